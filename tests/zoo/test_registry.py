"""The Registry contract, run against SQLite and PostgreSQL alike."""

import pickle
import sqlite3
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import torch

import reszoo
from reszoo import (
    ConflictError,
    EntryNotFoundError,
    IntegrityError,
    LatencyRecord,
    Registry,
    RegistryError,
    RemoteUnavailableError,
    WeightsError,
)
from reszoo.zoo.schema import SCHEMA_REVISION
from tests.conftest import BACKENDS
from tests.helpers import TINY, outputs, tiny_model


def latency(digest: str, device: str = "cpu-test", median: float = 1.0, runtime: str = "eager") -> LatencyRecord:
    return LatencyRecord(
        digest,
        device,
        1,
        "float32",
        runtime,
        median,
        median * 1.1,
        50,
        {"torch": torch.__version__},
        datetime.now(UTC),
    )


@BACKENDS
def test_add_get_load_round_trip(make_registry_url):
    registry = Registry(make_registry_url())
    model = tiny_model(0)
    record = registry.add(
        "tiny",
        model,
        dataset="synthetic",
        metrics={"top1": 0.5, "loss": 1.2},
        history=[{"epoch": 1, "test_err": 0.5}],
        recipe={"lr": 0.1},
        device="cpu",
        notes="first",
    )
    assert (record.ref, record.dataset, record.top1, record.notes) == ("tiny@1", "synthetic", 0.5, "first")
    assert record.spec == TINY and record.params == reszoo.count(TINY).params
    assert record.history == [{"epoch": 1, "test_err": 0.5}] and record.recipe == {"lr": 0.1}
    assert registry.get("tiny") == record
    loaded = registry.load("tiny")
    assert not loaded.training
    assert torch.equal(outputs(loaded), outputs(model))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@BACKENDS
def test_versions_latest_and_aliases(make_registry_url):
    registry = Registry(make_registry_url())
    for seed in range(3):
        registry.add("tiny", tiny_model(seed))
    assert [r.version for r in registry.list(all_versions=True)] == [1, 2, 3]
    assert registry.get("tiny").version == 3 == registry.get("tiny:latest").version
    registry.tag("tiny@2", "best")
    assert registry.get("tiny:best").version == 2 and registry.get("tiny@2").aliases == ("best",)
    registry.tag("tiny@1", "best")  # an alias moves
    assert registry.get("tiny:best").version == 1
    assert torch.equal(outputs(registry.load("tiny:best")), outputs(tiny_model(0)))
    with pytest.raises(reszoo.InputError, match="'latest' always means the highest version"):
        registry.tag("tiny@1", "latest")
    with pytest.raises(EntryNotFoundError, match="no alias 'worst' for 'tiny'.*aliases: best"):
        registry.get("tiny:worst")
    with pytest.raises(EntryNotFoundError, match="versions of 'tiny': 1, 2, 3"):
        registry.get("tiny@7")
    with pytest.raises(ConflictError, match="tiny@1 already exists"):
        registry.add("tiny", tiny_model(9), version=1)
    assert registry.add("tiny", tiny_model(0), version=1).version == 1  # identical content: idempotent


@BACKENDS
def test_list_filters(make_registry_url):
    registry = Registry(make_registry_url())
    plain = TINY.with_overrides(family="plain")
    registry.add("res-a", tiny_model(0), dataset="cifar10", metrics={"top1": 0.9})
    registry.add("res-b", tiny_model(1), dataset="fashion-mnist", metrics={"top1": 0.8})
    registry.add("plain-a", tiny_model(2, plain), dataset="cifar10", metrics={"top1": 0.7})
    registry.add_latency(latency(TINY.digest, median=0.2))
    registry.add_latency(latency(plain.digest, median=0.5))
    names = lambda records: [r.name for r in records]  # noqa: E731
    assert names(registry.list()) == ["plain-a", "res-a", "res-b"]
    assert names(registry.list("res-*")) == ["res-a", "res-b"]
    assert names(registry.list("res-?")) == ["res-a", "res-b"]
    assert names(registry.list(family="plain")) == ["plain-a"]
    assert names(registry.list(dataset="cifar10")) == ["plain-a", "res-a"]
    assert names(registry.list(min_top1=0.75)) == ["res-a", "res-b"]
    assert names(registry.list(max_latency_ms=0.3, device="cpu-test")) == ["res-a", "res-b"]
    assert names(registry.list(max_latency_ms=0.3, device="other-device")) == []
    assert registry.best_latency("cpu-test") == {TINY.digest: 0.2, plain.digest: 0.5}
    with pytest.raises(reszoo.InputError, match="needs a device"):
        registry.list(max_latency_ms=1.0)
    assert names(registry.list("res_a")) == []  # '_' is literal, not a LIKE wildcard


@BACKENDS
def test_blobs_are_stored_once_and_removed_with_their_last_entry(make_registry_url):
    registry = Registry(make_registry_url())
    model = tiny_model(0)
    a = registry.add("a", model)
    b = registry.add("b", model)
    assert a.blob_sha256 == b.blob_sha256
    count_blobs = lambda: registry.engine.connect().exec_driver_sql("SELECT COUNT(*) FROM blobs").scalar()  # noqa: E731
    assert count_blobs() == 1
    registry.remove("a")
    assert count_blobs() == 1 and torch.equal(outputs(registry.load("b")), outputs(model))
    registry.remove("b")
    assert count_blobs() == 0
    with pytest.raises(EntryNotFoundError):
        registry.get("b")


@BACKENDS
def test_publish_and_pull_copy_whole_entries_idempotently(make_registry_url):
    local, remote = Registry(make_registry_url()), Registry(make_registry_url())
    model = tiny_model(0)
    local.add("tiny", model, dataset="synthetic", metrics={"top1": 0.5}, parent="base@1", study="s1", trial=4)
    local.add_latency(latency(TINY.digest))
    seen = []
    published = local.publish("tiny", remote, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == published.blob_size
    assert published.ref == "tiny@1" and (published.parent, published.study, published.trial) == ("base@1", "s1", 4)
    assert published.created_at == local.get("tiny").created_at
    assert [r.device for r in remote.latency(TINY.digest)] == ["cpu-test"]
    assert local.publish("tiny", remote).ref == "tiny@1"  # again: no-op
    assert len(remote.list(all_versions=True)) == 1

    other = Registry(make_registry_url())
    other.add("tiny", tiny_model(5))
    with pytest.raises(ConflictError, match=r"tiny@1 already exists .* weights sha256 [0-9a-f]{12}"):
        other.publish("tiny", remote)
    assert other.publish("tiny", remote, version=2).ref == "tiny@2"

    third = Registry(make_registry_url())
    pulled = third.pull("tiny@1", remote)
    assert pulled.blob_sha256 == published.blob_sha256
    assert torch.equal(outputs(third.load("tiny@1")), outputs(model))


@BACKENDS
def test_tampered_or_truncated_weights_are_refused_before_loading(make_registry_url):
    registry = Registry(make_registry_url())
    record = registry.add("tiny", tiny_model(0))
    data = registry.blob("tiny")
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    with registry.engine.begin() as conn:  # stored as it is, one byte flipped (compressed: test_registry_blobs.py)
        conn.execute(sa.text("UPDATE blobs SET data = :d, encoding = ''"), {"d": bytes(flipped)})
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        registry.load("tiny")
    target = Registry(make_registry_url())
    with pytest.raises(IntegrityError, match="nothing was copied"):
        target.pull("tiny", registry)
    assert target.list() == []
    with registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE blobs SET data = :d, encoding = ''"), {"d": data[: len(data) // 2]})
    with pytest.raises(IntegrityError, match=f"is {len(data) // 2} bytes, expected {record.blob_size}: truncated"):
        registry.load("tiny")


@BACKENDS
def test_weights_that_do_not_fit_are_refused_with_the_keys(make_registry_url):
    registry = Registry(make_registry_url())
    state = tiny_model(0).state_dict()
    state.pop("fc.bias")
    state["extra.weight"] = torch.zeros(1)
    state["layer1.0.conv1.weight"] = torch.zeros(4, 4, 1, 1)
    with pytest.raises(WeightsError) as info:
        registry.add("tiny", state, TINY)
    message = str(info.value)
    assert "missing (1): fc.bias" in message
    assert "unexpected (1): extra.weight" in message
    assert "mis-shaped (1): layer1.0.conv1.weight (4, 4, 1, 1) (spec wants (4, 4, 3, 3))" in message
    assert registry.list() == []


@BACKENDS
def test_non_finite_weights_are_refused(make_registry_url):
    registry = Registry(make_registry_url())
    model = tiny_model(0)
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")
    with pytest.raises(WeightsError, match="NaN or infinite values in fc.weight"):
        registry.add("tiny", model)
    assert registry.list() == []


@BACKENDS
def test_float16_storage_is_recorded_and_loads_as_float32(make_registry_url):
    registry = Registry(make_registry_url())
    record = registry.add("half", tiny_model(0), weights_dtype=torch.float16)
    assert record.dtypes.startswith("float16:") and "float32" not in record.dtypes
    model = registry.load("half")
    assert model.fc.weight.dtype == torch.float32
    torch.testing.assert_close(outputs(model), outputs(tiny_model(0)), rtol=2e-2, atol=2e-2)


def test_float16_storage_keeps_a_tensor_it_would_overflow_in_float32(tmp_path):
    model = tiny_model(0)
    model.bn1.running_var.fill_(2.6e6)  # seen in a diverging plain net; float16 tops out at 65504
    record = Registry(tmp_path / "r.db").add("half", model, weights_dtype=torch.float16)
    assert "float16:" in record.dtypes and "float32:1" in record.dtypes
    assert torch.equal(Registry(tmp_path / "r.db").load("half").bn1.running_var, model.bn1.running_var)


class _CreatesFile:
    """Unpickling this creates a file: what a malicious checkpoint could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_pickle_weights_are_refused_unopened(tmp_path, suffix):
    canary = tmp_path / "pwned"
    weights = tmp_path / f"weights{suffix}"
    weights.write_bytes(pickle.dumps(_CreatesFile(canary), protocol=4))
    registry = Registry(tmp_path / "reg.db")
    with pytest.raises(WeightsError, match="safetensors only.*save_file"):
        registry.import_weights(weights, TINY, "evil")
    assert not canary.exists()
    assert registry.list() == []


def test_import_and_export_preserve_bytes(tmp_path):
    from safetensors.torch import save_file

    registry = Registry(tmp_path / "reg.db")
    source = tmp_path / "in.safetensors"
    save_file(tiny_model(0).state_dict(), str(source))
    record = registry.import_weights(source, TINY, "tiny", dataset="synthetic")
    out = registry.export("tiny", tmp_path / "out.safetensors")
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() == record.blob_sha256
    with pytest.raises(ConflictError, match="already exists"):
        registry.export("tiny", out)
    with pytest.raises(WeightsError, match="not a valid safetensors file"):
        (tmp_path / "junk.safetensors").write_bytes(b"not safetensors at all")
        registry.import_weights(tmp_path / "junk.safetensors", TINY, "junk")


def test_a_file_that_is_not_sqlite_is_never_touched(tmp_path):
    path = tmp_path / "registry.db"
    path.write_text("my notes, not a database\n")
    with pytest.raises(
        RegistryError, match="not a SQLite database, or one damaged beyond reading; reszoo will not touch it"
    ):
        Registry(path)
    assert path.read_text() == "my notes, not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.db"]


def test_a_database_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(RegistryError, match="database of something else"):
        Registry(path)
    assert path.read_bytes() == before  # not even switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "reg.db"
    Registry(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(RegistryError, match="schema 9999, newer than this reszoo understands"):
        Registry(path)


def test_schema_revision_is_the_alembic_head():
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import reszoo.zoo.registry as module

    config = Config()
    config.set_main_option("script_location", str(Path(module.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_an_unreachable_remote_leaves_the_local_registry_untouched(tmp_path):
    local = Registry(tmp_path / "local.db")
    local.add("tiny", tiny_model(0))
    before = local.list()
    with pytest.raises(RemoteUnavailableError, match="cannot reach registry"):
        local.pull("resnet56", "postgresql+psycopg://nobody@127.0.0.1:9/none")
    assert local.list() == before


def test_unknown_entry_suggests_close_names(tmp_path):
    registry = Registry(tmp_path / "reg.db")
    registry.add("tiny-net", tiny_model(0))
    with pytest.raises(EntryNotFoundError, match="did you mean 'tiny-net'"):
        registry.get("tiny-nett")
    for bad in ("tiny-net@x", "tiny-net@0", "tiny-net@²", "@1", "a:b@1", "tiny-net@99999999999999999999", "a b"):
        with pytest.raises(reszoo.InputError):
            registry.get(bad)


def test_shipped_registry_holds_every_preset_architecture():
    from reszoo.zoo.hub import SHIPPED_REGISTRY
    from reszoo.zoo.presets import PRESETS

    before = SHIPPED_REGISTRY.read_bytes()
    shipped = Registry(SHIPPED_REGISTRY, readonly=True)
    archs = {a.name: a for a in shipped.architectures() if a.name is not None}  # unnamed: trained entries' fits
    assert set(archs) == set(PRESETS)
    for name, spec in PRESETS.items():
        assert archs[name].digest == spec.digest
        assert archs[name].params == reszoo.count(spec).params
    with pytest.raises(EntryNotFoundError, match="'resnet1202' has no trained weights .* yet"):
        shipped.get("resnet1202")  # a preset the zoo does not train
    shipped.close()
    assert SHIPPED_REGISTRY.read_bytes() == before


def test_load_from_an_unreachable_remote_creates_no_local_registry(tmp_path, monkeypatch):
    monkeypatch.setenv("RESZOO_REMOTE", str(tmp_path / "missing.db"))
    with pytest.raises(RemoteUnavailableError, match="does not exist"):
        reszoo.load("tiny")
    assert not (tmp_path / "reszoo-home").exists()


def test_load_pulls_on_first_use_then_works_offline(tmp_path, monkeypatch):
    remote_path = tmp_path / "remote.db"
    remote = Registry(remote_path)
    model = tiny_model(3)
    remote.add("tiny", model)
    remote.close()
    monkeypatch.setenv("RESZOO_REMOTE", str(remote_path))
    first = reszoo.load("tiny")
    assert torch.equal(outputs(first), outputs(model))
    remote_path.rename(tmp_path / "gone.db")  # offline from here on
    assert torch.equal(outputs(reszoo.load("tiny")), outputs(model))
    assert reszoo.list_models("tiny*") == ["tiny"]
    assert "resnet20" in reszoo.list_models("resnet2*") and reszoo.list_models("resnet2*", pretrained=True) == []


def test_pulling_from_a_read_only_remote_never_writes_to_it(tmp_path):
    from reszoo.zoo.schema import SCHEMA_REVISION as head

    path = tmp_path / "remote.db"
    remote = Registry(path)
    remote.add("tiny", tiny_model(0))
    remote.close()
    with sqlite3.connect(path) as conn:  # pretend it was written by an older reszoo
        conn.execute("DROP TABLE latency_parts")
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    before = path.read_bytes()
    local = Registry(tmp_path / "local.db")
    local.pull("tiny", str(path))
    assert path.read_bytes() == before
    with pytest.raises(RegistryError, match="opened read-only"):
        Registry(path, readonly=True).add("x", tiny_model(1))
    assert head != "0001"


def test_a_repeated_pull_repairs_damaged_local_bytes(tmp_path):
    remote, local = Registry(tmp_path / "remote.db"), Registry(tmp_path / "local.db")
    model = tiny_model(0)
    remote.add("tiny", model)
    local.pull("tiny", remote)
    with local.engine.begin() as conn:
        conn.execute(sa.text("UPDATE blobs SET data = substr(data, 1, 64)"))
    with pytest.raises(IntegrityError):
        local.load("tiny")
    local.pull("tiny", remote)
    assert torch.equal(outputs(local.load("tiny")), outputs(model))


def test_aliases_travel_with_a_pull(tmp_path):
    remote, local = Registry(tmp_path / "remote.db"), Registry(tmp_path / "local.db")
    remote.add("tiny", tiny_model(0))
    remote.add("tiny", tiny_model(1))
    remote.tag("tiny@1", "best")
    local.pull("tiny:best", remote)
    assert local.get("tiny:best").version == 1


def test_list_patterns_and_filters_pick_the_latest_qualifying_version(tmp_path):
    registry = Registry(tmp_path / "r.db")
    registry.add("Net-a", tiny_model(0), metrics={"top1": 0.9})
    registry.add("Net-a", tiny_model(1), metrics={"top1": 0.5})
    registry.add("net-b", tiny_model(2))
    assert [r.name for r in registry.list("[N]et-*")] == ["Net-a"]
    assert [r.name for r in registry.list("net-*")] == ["net-b"]  # case-sensitive on every backend
    assert [r.ref for r in registry.list("Net-a", min_top1=0.8)] == ["Net-a@1"]
    assert [r.ref for r in registry.list("Net-a")] == ["Net-a@2"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(metrics={"top1": 95}), "top-1 fraction from 0 to 1"),
        (dict(recipe=[1, 2]), "recipe must be a dict"),
        (dict(history={"a": 1}), "history must be a list of per-epoch dicts"),
        (dict(trial="abc"), "trial must be an integer"),
        (dict(version=2**40), "version must be a whole number from 1"),
        (dict(dataset="x" * 300), "dataset must be text of at most 200"),
    ],
)
def test_bad_metadata_is_refused_before_writing(tmp_path, kwargs, message):
    registry = Registry(tmp_path / "r.db")
    with pytest.raises(reszoo.InputError, match=message):
        registry.add("tiny", tiny_model(0), **kwargs)
    assert registry.list() == []


def test_an_in_memory_registry_works():
    registry = Registry("sqlite://")
    registry.add("tiny", tiny_model(0))
    assert registry.get("tiny").version == 1


def test_a_tampered_architecture_is_refused_on_every_read(tmp_path):
    """Changing an architecture's spec and leaving its digest must not build the other net."""
    path = tmp_path / "r.db"
    with Registry(path) as registry:
        record = registry.add("tiny", tiny_model())
    other = TINY.with_overrides(stage_widths=(4, 4)).to_json()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE architectures SET spec_json = ? WHERE digest = ?", (other, record.arch_digest))
    with Registry(path) as registry:
        for read in (registry.load, registry.get):
            with pytest.raises(reszoo.IntegrityError, match="does not hash to its digest"):
                read("tiny")


def _safetensors_starting_with(first_byte: int, state: dict, path) -> None:
    """A valid safetensors file whose header length's low byte is ``first_byte``
    (about 1 file in 32 starts with pickle's 0x80), padded through its metadata."""
    from safetensors.torch import save_file

    for pad in range(512):
        save_file(state, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[0] == first_byte:
            return
    raise AssertionError("no padding gave that first byte")


def test_valid_safetensors_are_never_mistaken_for_pickle(tmp_path):
    from reszoo.zoo.weights import read_weights_file

    state = tiny_model().state_dict()
    path = tmp_path / "w.safetensors"
    _safetensors_starting_with(0x80, state, path)
    loaded = read_weights_file(path)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(pickle.dumps({"fc.weight": [1.0]})), "pickle/torch.save file"),
        (lambda p: p.write_bytes(b"\x00" * 64), "does not start with a safetensors header"),
        (lambda p: p.write_bytes(b""), "does not start with a safetensors header"),
    ],
)
def test_weights_files_that_are_not_safetensors(tmp_path, make, message):
    from reszoo.zoo.weights import read_weights_file

    path = tmp_path / "w.safetensors"
    make(path)
    with pytest.raises(reszoo.WeightsError, match=message):
        read_weights_file(path)


def test_streams_and_truncated_files_are_refused_before_their_data_is_read(tmp_path):
    from safetensors.torch import save_file

    from reszoo.zoo.weights import read_weights_file

    with pytest.raises(reszoo.WeightsError, match="not a regular file"):
        read_weights_file("/dev/zero")  # read whole, this is 6.8 GB of memory after 12 s
    path = tmp_path / "w.safetensors"
    save_file(tiny_model().state_dict(), str(path))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(reszoo.WeightsError, match="truncated or damaged"):
        read_weights_file(path)


def test_integer_weights_for_float_parameters_are_refused_at_the_door(tmp_path):
    state = {k: (v.to(torch.int32) if v.is_floating_point() else v) for k, v in tiny_model().state_dict().items()}
    with Registry(tmp_path / "r.db") as registry, pytest.raises(reszoo.WeightsError, match="mis-typed"):
        registry.add("ints", state, TINY)


def test_a_settled_registry_reads_from_a_read_only_place_without_writing(tmp_path, monkeypatch):
    import reszoo.zoo.registry as registry_module

    path = tmp_path / "zoo.db"
    with Registry(path) as registry:
        registry.add("tiny", tiny_model())
    assert Registry(path).settle()
    assert not (tmp_path / "zoo.db-wal").exists()
    before = path.read_bytes()
    # A folder nobody may write to (as root, chmod would not stop the test): SQLite must not need to.
    monkeypatch.setattr(registry_module.os, "access", lambda *args: False)
    remote = Registry(path, readonly=True)
    assert "mode=ro" in str(remote.engine.url)  # a settled file needs no -shm: plain read-only access, with locks
    assert [e.ref for e in remote.list()] == ["tiny@1"] and remote.load("tiny") is not None
    with pytest.raises(sa.exc.OperationalError, match="readonly"), remote.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE x (a INTEGER)")
    remote.close()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["zoo.db"]


@pytest.mark.parametrize("version", [0, -3, "2", 2.0, True, 2**31, 99999999999])
def test_one_version_rule_for_every_way_in(tmp_path, version):
    with Registry(tmp_path / "a.db") as source, Registry(tmp_path / "b.db") as target:
        source.add("tiny", tiny_model())
        with pytest.raises(reszoo.InputError, match="version must be a whole number from 1 to 2147483647"):
            source.add("tiny", tiny_model(1), version=version)
        with pytest.raises(reszoo.InputError, match="version must be a whole number from 1 to 2147483647"):
            source.publish("tiny@1", target, version=version)
        assert [e.ref for e in target.list(all_versions=True)] == []


def test_the_last_nameable_version_is_the_last(tmp_path):
    with Registry(tmp_path / "a.db") as registry:
        registry.add("tiny", tiny_model(), version=2**31 - 1)
        with pytest.raises(reszoo.ConflictError, match="reached version 2147483647"):
            registry.add("tiny", tiny_model(1))
        assert registry.get("tiny").version == 2**31 - 1  # and a reference names it


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda tmp: Registry(None), reszoo.InputError, "needs a SQLAlchemy URL or a SQLite file path, got NoneType"),
        (lambda tmp: Registry(5), reszoo.InputError, "got int"),
        (lambda tmp: Registry(tmp / "r.db").list(None), reszoo.InputError, "name pattern"),
        (lambda tmp: reszoo.list_models(None), reszoo.SpecError, "name pattern"),
        (lambda tmp: Registry(tmp / "r.db").add("x", None, TINY), reszoo.WeightsError, "got NoneType"),
        (lambda tmp: Registry(tmp / "r.db").add("x", "w.safetensors", TINY), reszoo.WeightsError, "import_weights"),
        (
            lambda tmp: Registry(tmp / "r.db").add("x", {"fc.weight": 5}, TINY),
            reszoo.WeightsError,
            "map names to tensors",
        ),
        (
            lambda tmp: Registry(tmp / "r.db").add("x", reszoo.create_model(TINY, device="meta")),
            reszoo.WeightsError,
            "meta device",
        ),
        (
            lambda tmp: Registry(tmp / "r.db").import_weights(None, TINY, "x"),
            reszoo.InputError,
            "path of a .safetensors",
        ),
        (lambda tmp: reszoo.create_model("resnet20", device="bogus"), reszoo.DeviceError, "not a device name"),
    ],
)
def test_python_api_misuse_names_the_argument(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)
