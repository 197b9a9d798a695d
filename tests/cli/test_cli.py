"""The CLI through Typer's runner; results checked through the Python API."""

import json

import pytest
from typer.testing import CliRunner

import reszoo
from reszoo.cli.app import app
from reszoo.zoo.spec import read_spec_file

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


def test_version():
    assert run("--version").stdout.startswith(f"reszoo {reszoo.__version__}")


def test_list_table_shows_every_preset_with_counts():
    out = run("list").stdout
    for name in reszoo.list_models():
        assert name in out
    line = next(line for line in out.splitlines() if line.startswith("resnet56 "))
    assert line.split() == ["resnet56", "residual", "basic", "cifar", "A", "56", "0.85M", "125.5M"]


def test_list_json_is_machine_readable_and_filtered():
    rows = json.loads(run("list", "resnet*", "--family", "residual", "--json").stdout)
    assert [row["name"] for row in rows] == reszoo.list_models("resnet*")
    row = next(r for r in rows if r["name"] == "resnet20")
    assert row["params"] == 269_722 and row["depth"] == 20
    assert row["digest"] == reszoo.get_spec("resnet20").digest
    assert list(row) == [
        "kind",
        "name",
        "family",
        "block",
        "stem",
        "shortcut",
        "depth",
        "params",
        "macs",
        "input_size",
        "num_classes",
        "digest",
    ]
    assert json.loads(run("list", "plain*", "--family", "highway", "--json").stdout) == []


def test_list_rejects_an_unknown_family():
    result = run("list", "--family", "resnet", code=2)
    assert "family must be one of 'residual', 'plain', 'highway', got 'resnet'" in result.stderr


def test_show_prints_stages_params_macs_and_digest():
    out = run("show", "resnet56").stdout
    spec = reszoo.get_spec("resnet56")
    assert spec.summary()[:40] in out.replace("\n", " ")
    assert "853,018" in out and spec.digest in out
    assert "8x8" in out  # the last stage's output size


def test_show_json_matches_the_api():
    card = json.loads(run("show", "resnet34", "--json").stdout)
    spec = reszoo.get_spec("resnet34")
    assert card["spec"] == spec.to_dict()
    assert card["params"] == 21_797_672
    assert [s["out_channels"] for s in card["stages"]] == [64, 128, 256, 512]
    assert [s["output_size"] for s in card["stages"]] == [56, 28, 14, 7]


def test_unknown_name_suggests_and_exits_2():
    result = run("show", "resnt34", code=2)
    assert "unknown model 'resnt34'; did you mean 'resnet34'" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_build_writes_a_spec_that_feeds_back(tmp_path):
    out = tmp_path / "wide20.json"
    run("build", "resnet20", "--set", "stage_widths=32,64,128", "--set", "num_classes=100", "--out", str(out))
    spec = read_spec_file(out)
    assert spec == reszoo.get_spec("resnet20").with_overrides(stage_widths=(32, 64, 128), num_classes=100)
    card = json.loads(run("show", str(out), "--json").stdout)
    assert card["digest"] == spec.digest and card["name"] is None
    # The written file is an input to build as well, and to the Python API.
    run("build", str(out), "--set", "family=plain", "--out", str(tmp_path / "plain.json"))
    assert reszoo.create_model(str(tmp_path / "plain.json")).spec.family == "plain"


def test_build_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "net.json"
    out.write_text("my notes")
    result = run("build", "resnet20", "--out", str(out), code=2)
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "my notes"
    run("build", "resnet20", "--out", str(out), "--force")
    assert read_spec_file(out) == reszoo.get_spec("resnet20")


def test_build_without_out_prints_the_spec():
    assert reszoo.ArchSpec.from_json(run("build", "plain20").stdout) == reszoo.get_spec("plain20")


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("stage_dept=5,5,5", "unknown spec field 'stage_dept'; did you mean 'stage_depths'?"),
        ("stage_depths=5,0,5", "empty stage"),
        ("shortcut=A", None),  # valid: resnet20 already uses A
        ("family=highway", None),
        ("nonsense", "--set expects key=value"),
        ("stem=imagenet", None),
        ("shortcut=E", "shortcut must be one of"),
        ("stage_depths=1,2,x", "got 'x'"),
    ],
)
def test_build_set_values(assignment, message):
    if message is None:
        run("build", "resnet20", "--set", assignment)
    else:
        assert message in run("build", "resnet20", "--set", assignment, code=2).stderr


def test_show_reports_a_bad_spec_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"family": "residual", "stage_widths": [16, 32]}')
    result = run("show", str(bad), code=2)
    assert "bad.json" in result.stderr and "stage_depths has 3 stages but stage_widths has 2" in result.stderr
    assert "does not exist" in run("show", str(tmp_path / "nope.json"), code=2).stderr


def test_help_texts_describe_each_command():
    out = " ".join(run("--help").stdout.split())
    for summary in ("List preset architectures", "Show a registry entry's model card", "Write a spec you can edit"):
        assert summary in out
    assert "--set" in run("build", "--help").stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "--dataset", "synthetic", "--trials", "1", "--out", "{tmp}/missing/out.json"],
        ["plot", "pareto", "nostudy", "--out", "{tmp}/missing/front.png"],
        ["plot", "curves", "resnet20", "--out", "{tmp}/missing/curves.png"],
        ["plot", "curves", "resnet20", "--out", "{tmp}/curves.bmpx"],
        ["plot", "curves", "resnet20", "--out", "{tmp}/" + "c" * 300 + ".png"],
    ],
)
def test_output_paths_are_checked_before_the_work(tmp_path, argv):
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert any(hint in result.output for hint in ("does not exist", "no known format", "255")), result.output


@pytest.mark.parametrize(
    "argv, message",
    [
        (["list", "--device", "cpu", "--batch-size", "99999999999999999999"], "batch-size"),
        (["bench", "resnet20", "--batch-size", "100000000"], "batch-size"),
        (["show", "{tmp}/deep.json"], "nests deeper"),
        (["show", "{tmp}/huge.json"], "at most 8,192"),
        (["show", "{tmp}"], "unknown model"),
    ],
)
def test_big_or_deep_input_gives_one_line_not_a_traceback(tmp_path, argv, message):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "huge.json").write_text(json.dumps({"stage_depths": [3, 3, 3], "stage_widths": [16, 32, 10**30]}))
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_search_table_marks_a_latency_scaled_for_a_slow_host():
    from rich.console import Console

    from reszoo.cli.search import results_table
    from reszoo.search.results import TrialResult
    from reszoo.zoo.presets import get_spec

    spec = get_spec("resnet20")

    def trial(number, ms, source):
        return TrialResult(
            number=number,
            state="COMPLETE",
            spec=spec,
            params=272474,
            accuracy=0.8,
            latency_ms=ms,
            latency_source=source,
            feasible=True,
            reason=None,
        )

    def rendered(rows):
        console = Console(width=80, record=True)  # the table is meant to fit an 80-column terminal
        console.print(results_table(rows, {}, "best", with_loss=True))
        return console.export_text()

    text = rendered([trial(0, 1.5, "measured"), trial(1, 1.75, "relative")])
    assert "1.500 " in text and "1.750*" in text  # only the scaled reading is marked
    caption = " ".join(text.split())  # wherever rich wraps it
    assert "ran slow" in caption and "raw reading" in caption
    assert "*" not in rendered([trial(0, 1.5, "measured")])
