"""ArchSpec: validation, canonical JSON, digests, overrides and spec files."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reszoo
from reszoo import ArchSpec, ReszooError, SpecError, SpecFileError
from reszoo.zoo.presets import PRESETS
from reszoo.zoo.spec import FAMILY_SHORTCUTS, read_spec_file, write_spec_file

# The digests of a few presets, computed once and checked in: a change here
# orphans every registry row keyed on them, so it must be deliberate.
GOLDEN_DIGESTS = {
    "resnet20": "8a1d32a5853b3db2ec1b83b364b21fd37b6797863848783fa5ed06440f5f587e",
    "resnet56": "f38261db4470f4132631e59c49309080891728f4556483f8cb92ac95454de840",
    "plain20": "69bf578f5d8168a1399604585633e1632bc85627caf9f9f7eb12ad871ff56f38",
    "highway56": "6c419014bbe329b0e44eff3d74a7aa1f50ef082ebb5d97520009d525be03cbf8",
    "resnet34": "992f27bb6d9f84f994b1d5e60a0232a91dbc21c21f1a1729b1e8e7b35983eb11",
    "resnet50": "7c308940f08717a7ffdafc5afde661f4cf6e1845f0e7841f3947704b4197caac",
}


@pytest.mark.parametrize("name", sorted(GOLDEN_DIGESTS))
def test_digest_matches_golden_table(name):
    assert reszoo.get_spec(name).digest == GOLDEN_DIGESTS[name]


def test_canonical_json_is_sorted_compact_ascii():
    assert reszoo.get_spec("resnet20").to_json() == (
        '{"block":"basic","family":"residual","in_chans":3,"input_size":32,"num_classes":10,'
        '"shortcut":"A","stage_depths":[3,3,3],"stage_widths":[16,32,64],"stem":"cifar"}'
    )


def test_digests_are_distinct_across_presets():
    digests = [spec.digest for spec in PRESETS.values()]
    assert len(set(digests)) == len(digests)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_json(name):
    spec = PRESETS[name]
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec and again.digest == spec.digest
    assert ArchSpec.from_json(spec.to_json(indent=2)) == spec


def test_defaults_are_resolved_into_the_canonical_form():
    spec = ArchSpec(stem="imagenet", stage_depths=[2, 2], stage_widths=[8, 16])
    assert spec.shortcut == "B" and spec.input_size == 224
    assert spec.stage_depths == (2, 2)  # lists become tuples: hashable, immutable
    assert spec == ArchSpec.from_dict(spec.to_dict())
    assert ArchSpec(family="plain").shortcut == "none"


@st.composite
def valid_specs(draw):
    family = draw(st.sampled_from(["residual", "plain", "highway"]))
    stages = draw(st.integers(1, 5))
    depths = draw(st.lists(st.integers(1, 50), min_size=stages, max_size=stages))
    shortcut = draw(st.sampled_from(FAMILY_SHORTCUTS[family]))
    widths = draw(st.lists(st.integers(1, 2048), min_size=stages, max_size=stages))
    if shortcut == "A":
        widths = sorted(widths)
    return ArchSpec(
        family=family,
        block=draw(st.sampled_from(["basic", "bottleneck"])),
        stem=draw(st.sampled_from(["cifar", "imagenet"])),
        stage_depths=depths,
        stage_widths=widths,
        shortcut=shortcut,
        num_classes=draw(st.integers(1, 100_000)),
        in_chans=draw(st.integers(1, 16)),
        input_size=draw(st.integers(1, 1024)),
    )


@given(valid_specs())
def test_generated_specs_round_trip(spec):
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec
    assert again.digest == spec.digest
    assert len(spec.stage_output_sizes()) == len(spec.stage_depths)
    assert spec.stage_output_sizes()[-1] >= 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
spec_fields = st.sampled_from(
    ["family", "block", "stem", "stage_depths", "stage_widths", "shortcut", "num_classes", "in_chans", "input_size"]
)


@given(st.dictionaries(spec_fields | st.text(max_size=12), json_values, max_size=9))
def test_arbitrary_dicts_give_a_spec_or_a_spec_error(data):
    try:
        spec = ArchSpec.from_dict(data)
    except SpecError as exc:
        assert str(exc)  # a message, never an empty error
    else:
        assert ArchSpec.from_json(spec.to_json()) == spec


@given(st.text(max_size=200) | st.binary(max_size=64))
def test_arbitrary_text_gives_a_spec_or_a_spec_error(text):
    try:
        ArchSpec.from_json(text)
    except SpecError:
        pass


@pytest.mark.parametrize(
    "fields, field, fragment",
    [
        ({"family": "resnet"}, "family", "'residual', 'plain', 'highway'"),
        ({"block": "basik"}, "block", "did you mean 'basic'"),
        ({"stem": "mnist"}, "stem", "'cifar', 'imagenet'"),
        ({"stage_depths": []}, "stage_depths", "at least one stage"),
        ({"stage_depths": [3, 0, 3]}, "stage_depths", "empty stage"),
        ({"stage_depths": 3}, "stage_depths", "list of positive integers"),
        ({"stage_depths": [3, 3], "stage_widths": [16, 32, 64]}, "stage_widths", "one depth and one width per stage"),
        ({"stage_widths": [16, -32, 64]}, "stage_widths", "-32"),
        ({"stage_widths": [16, 32.5, 64]}, "stage_widths", "32.5"),
        ({"stage_widths": [64, 32, 16], "shortcut": "A"}, "stage_widths", "cannot reduce"),
        ({"shortcut": "D"}, "shortcut", "'A', 'B', 'C', 'none'"),
        ({"family": "highway", "shortcut": "A"}, "shortcut", "highway"),
        ({"family": "plain", "shortcut": "B"}, "shortcut", "plain nets have no shortcut"),
        ({"family": "residual", "shortcut": "none"}, "shortcut", "not valid for a residual net"),
        ({"num_classes": 0}, "num_classes", "positive integer"),
        ({"num_classes": True}, "num_classes", "positive integer"),
        ({"in_chans": "3"}, "in_chans", "positive integer"),
        ({"input_size": -32}, "input_size", "positive integer"),
        ({"widths": [1, 2, 3]}, "widths", "did you mean 'stage_widths'"),
    ],
)
def test_invalid_spec_names_field_value_and_what_is_allowed(fields, field, fragment):
    with pytest.raises(SpecError) as info:
        ArchSpec.from_dict(fields)
    assert info.value.field == field
    assert fragment in str(info.value)
    assert isinstance(info.value, ReszooError) and info.value.exit_code == 2


def test_bottleneck_with_shortcut_a_is_supported():
    spec = ArchSpec(block="bottleneck", shortcut="A")
    model = reszoo.create_model(spec)
    assert not any("downsample" in name for name, _ in model.named_parameters())


def test_summary_is_one_readable_line():
    summary = reszoo.get_spec("resnet56").summary()
    assert "\n" not in summary
    assert summary == (
        "residual 56-layer basic, cifar stem, depths 9-9-9, widths 16-32-64, shortcut A, 10 classes, 3x32x32 input"
    )


def test_overrides_rederive_dependent_fields():
    cifar34 = reszoo.resolve_spec("resnet34", num_classes=10, stem="cifar")
    assert (cifar34.stem, cifar34.input_size, cifar34.num_classes) == ("cifar", 32, 10)
    assert reszoo.resolve_spec("resnet34", stem="cifar", input_size=64).input_size == 64
    assert reszoo.resolve_spec("resnet20", family="plain") == reszoo.get_spec("plain20")
    assert reszoo.resolve_spec("resnet20", family="highway").shortcut == "B"
    with pytest.raises(SpecError, match="did you mean 'num_classes'"):
        reszoo.resolve_spec("resnet20", num_class=100)


def test_spec_file_round_trip_and_no_silent_overwrite(tmp_path):
    path = tmp_path / "net.json"
    spec = reszoo.get_spec("resnet44")
    write_spec_file(spec, path)
    assert read_spec_file(path) == spec
    assert reszoo.resolve_spec(str(path)) == spec
    before = path.read_bytes()
    with pytest.raises(SpecFileError, match="already exists"):
        write_spec_file(reszoo.get_spec("plain20"), path)
    assert path.read_bytes() == before
    write_spec_file(reszoo.get_spec("plain20"), path, overwrite=True)
    assert read_spec_file(path) == reszoo.get_spec("plain20")
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]  # no temp file left behind


def test_spec_file_errors_name_the_file(tmp_path):
    with pytest.raises(SpecFileError, match="does not exist"):
        read_spec_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="bad.json: spec is not valid JSON"):
        read_spec_file(bad)
    bad.write_text(json.dumps({"family": "residual", "stage_depths": [0]}))
    with pytest.raises(SpecError, match="bad.json: stage_depths"):
        read_spec_file(bad)


def test_unknown_name_suggests_close_presets():
    with pytest.raises(reszoo.UnknownModelError) as info:
        reszoo.get_spec("resnt34")
    assert info.value.suggestions[0] == "resnet34"
    assert "did you mean 'resnet34'" in str(info.value)


def test_list_models_filters_by_pattern_and_family():
    assert reszoo.list_models("resnet*")[:3] == ["resnet18", "resnet20", "resnet32"]
    assert reszoo.list_models("*", family="highway") == [
        "highway18",
        "highway20",
        "highway32",
        "highway34",
        "highway44",
        "highway56",
        "highway110",
    ]
    assert reszoo.list_models(["plain2*", "resnet1202"]) == ["plain20", "resnet1202"]
    assert reszoo.list_models("nothing*") == []
    with pytest.raises(SpecError, match="family must be one of"):
        reszoo.list_models(family="resnet")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"stage_depths": (100_000,), "stage_widths": (16,)}, "at most 1,000"),
        ({"stage_depths": (900, 900, 900)}, "add up to 2,700 blocks"),
        ({"stage_depths": (1,) * 9, "stage_widths": (4,) * 9}, "more than 8 stages"),
        ({"stage_widths": (16, 32, 10**12)}, "at most 8,192"),
        ({"num_classes": 10**9}, "at most 100,000"),
        ({"input_size": 10**6}, "at most 4,096"),
    ],
)
def test_specs_beyond_any_sane_net_are_refused_at_once(fields, message):
    with pytest.raises(reszoo.SpecError, match=message):
        reszoo.ArchSpec(**fields)
    assert reszoo.get_spec("resnet1202").depth == 1202  # the deepest preset stays inside the bounds


def test_the_plain_shortcut_error_speaks_of_plain_nets_only():
    with pytest.raises(SpecError) as caught:
        ArchSpec(family="plain", shortcut="A")
    assert "plain nets have no shortcut" in str(caught.value) and "highway" not in str(caught.value)
