"""Registry commands through the CLI runner, checked through the Python API."""

import json
import pickle
import time
from datetime import UTC

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import reszoo
from reszoo import Registry
from reszoo.cli.app import app
from reszoo.zoo.spec import write_spec_file
from tests.helpers import TINY, outputs, tiny_model

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    return result


@pytest.fixture
def weights_file(tmp_path):
    model = tiny_model(0)
    path = tmp_path / "tiny.safetensors"
    save_file(model.state_dict(), str(path))
    spec_path = write_spec_file(TINY, tmp_path / "tiny.json")
    return model, path, spec_path


def test_import_show_publish_pull_load_round_trip(tmp_path, weights_file):
    model, path, spec_path = weights_file
    first, second, third = (f"sqlite:///{tmp_path / name}" for name in ("first.db", "second.db", "third.db"))
    out = run(
        "--registry",
        first,
        "import",
        path,
        "--arch",
        spec_path,
        "--name",
        "tiny",
        "--dataset",
        "synthetic",
        "--top1",
        "0.42",
    ).stdout
    assert "imported tiny@1" in out

    card = run("--registry", first, "show", "tiny").stdout
    assert "tiny@1" in card and "synthetic" in card and "top-1 42.00%" in card
    sha = Registry(first).get("tiny").blob_sha256
    assert sha in card
    shown = json.loads(run("--registry", first, "show", "tiny@1", "--json").stdout)
    assert shown["blob_sha256"] == sha and shown["spec"] == TINY.to_dict() and shown["kind"] == "entry"

    missing = run("--registry", first, "publish", "tiny", "--remote", second, code=1)
    assert "does not exist" in missing.stderr
    assert "published tiny@1" in run("--registry", first, "publish", "tiny", "--remote", second, "--create").stdout
    assert "pulled tiny@1" in run("--registry", third, "pull", "tiny@1", "--remote", second).stdout
    loaded = Registry(third).load("tiny")
    assert torch.equal(outputs(loaded), outputs(model))

    run("--registry", third, "tag", "tiny@1", "best")
    rows = json.loads(run("--registry", third, "list", "--dataset", "synthetic", "--json").stdout)
    assert [(r["kind"], r["ref"], r["aliases"]) for r in rows] == [("entry", "tiny@1", ["best"])]
    table = run("--registry", third, "list", "tiny*").stdout
    assert "tiny@1 :best" in table

    exported = tmp_path / "out.safetensors"
    run("--registry", third, "export", "tiny:best", "--out", exported)
    import hashlib

    assert hashlib.sha256(exported.read_bytes()).hexdigest() == sha
    assert "already exists" in run("--registry", third, "export", "tiny", "--out", exported, code=1).stderr

    run("--registry", third, "rm", "tiny@1", "--yes")
    assert Registry(third).list() == []


def test_list_without_a_local_registry_shows_presets_and_creates_nothing(tmp_path):
    out = run("list", "resnet2*").stdout
    assert "resnet20" in out
    assert not (tmp_path / "reszoo-home").exists()


def test_pull_of_an_architecture_without_weights_says_so(tmp_path):
    # resnet1202: in the shipped registry as an architecture, never in the zoo's manifest.
    result = run("pull", "resnet1202", code=2)
    assert "'resnet1202' has no trained weights" in result.stderr
    assert "create_model('resnet1202') builds it untrained" in result.stderr


def test_pull_from_an_unreachable_remote(tmp_path):
    result = run(
        "--registry", tmp_path / "local.db", "pull", "x", "--remote", "postgresql+psycopg://u@127.0.0.1:9/db", code=1
    )
    assert "cannot reach registry" in result.stderr
    assert not (tmp_path / "local.db").exists()


def test_registry_path_that_is_not_a_database(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_text("keep me")
    Registry(tmp_path / "r.db").close()
    result = run("--registry", bad, "pull", "tiny", "--remote", tmp_path / "r.db", code=1)
    assert "not a SQLite database, or one damaged beyond reading; reszoo will not touch it" in result.stderr
    assert bad.read_text() == "keep me"


def test_pickle_import_is_refused_with_how_to_convert(tmp_path):
    evil = tmp_path / "model.pth"
    evil.write_bytes(pickle.dumps({"fc.weight": [1.0]}))
    result = run("--registry", tmp_path / "r.db", "import", evil, "--arch", "resnet20", "--name", "x", code=2)
    assert "safetensors only" in result.stderr and "save_file(torch.load(" in result.stderr


def test_import_that_does_not_fit_lists_the_keys(tmp_path, weights_file):
    _, path, _ = weights_file
    result = run("--registry", tmp_path / "r.db", "import", path, "--arch", "resnet20", "--name", "x", code=2)
    assert "weights do not fit" in result.stderr and "missing (" in result.stderr and "mis-shaped (" in result.stderr


def test_publish_conflict_names_the_existing_digest(tmp_path):
    a, b, remote = (Registry(tmp_path / f"{n}.db") for n in ("a", "b", "remote"))
    a.add("tiny", tiny_model(0))
    b.add("tiny", tiny_model(1))
    run("--registry", a.url, "publish", "tiny", "--remote", remote.url)
    result = run("--registry", b.url, "publish", "tiny", "--remote", remote.url, code=1)
    assert "tiny@1 already exists" in result.stderr and a.get("tiny").blob_sha256[:12] in result.stderr
    run("--registry", b.url, "publish", "tiny", "--remote", remote.url, "--version", "2")
    assert [e.version for e in remote.list(all_versions=True)] == [1, 2]


def test_rm_asks_before_removing(tmp_path):
    registry = Registry(tmp_path / "r.db")
    registry.add("tiny", tiny_model(0))
    run("--registry", registry.url, "rm", "tiny", code=1)  # no answer on stdin: aborted
    assert registry.get("tiny").version == 1


def test_unknown_entry_suggests_and_exits_2(tmp_path):
    registry = Registry(tmp_path / "r.db")
    registry.add("tiny-net", tiny_model(0))
    result = run("--registry", registry.url, "export", "tiny-nte", "--out", tmp_path / "w.safetensors", code=2)
    assert "no entry 'tiny-nte'" in result.stderr and "did you mean 'tiny-net'" in result.stderr


def test_tampered_weights_are_refused_by_every_command(tmp_path):
    import sqlalchemy as sa

    registry = Registry(tmp_path / "r.db")
    registry.add("tiny", tiny_model(0))
    with registry.engine.begin() as conn:
        conn.execute(sa.text("UPDATE blobs SET data = substr(data, 1, 100)"))
    out = tmp_path / "w.safetensors"
    result = run("--registry", registry.url, "export", "tiny", "--out", out, code=1)
    assert "truncated or damaged" in result.stderr and not out.exists()
    result = run("--registry", tmp_path / "other.db", "pull", "tiny", "--remote", registry.url, code=1)
    assert "truncated or damaged" in result.stderr and "nothing was read" in result.stderr


def test_non_finite_weights_are_refused_on_import(tmp_path):
    model = tiny_model(0)
    state = model.state_dict()
    state["fc.bias"][0] = float("inf")
    path = tmp_path / "inf.safetensors"
    save_file(state, str(path))
    spec_path = write_spec_file(TINY, tmp_path / "tiny.json")
    result = run("--registry", tmp_path / "r.db", "import", path, "--arch", spec_path, "--name", "x", code=2)
    assert "NaN or infinite values in fc.bias" in result.stderr
    assert Registry(tmp_path / "r.db").list() == []


def test_a_damaged_sqlite_file_is_reported_and_left_alone(tmp_path):
    path = tmp_path / "r.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 64)
    before = path.read_bytes()
    Registry(tmp_path / "remote.db").close()
    result = run("--registry", path, "pull", "x", "--remote", tmp_path / "remote.db", code=1)
    assert "is not a usable database" in result.stderr
    assert path.read_bytes() == before


def test_pull_from_a_missing_sqlite_remote_creates_nothing(tmp_path):
    result = run("--registry", tmp_path / "local.db", "pull", "x", "--remote", tmp_path / "nope.db", code=1)
    assert f"registry {tmp_path / 'nope.db'} does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("home", ["file", "under-file"])
def test_a_reszoo_home_that_is_no_folder_gets_one_line(tmp_path, monkeypatch, home):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RESZOO_HOME", str(blocker if home == "file" else blocker / "home"))
    weights = tmp_path / "w.safetensors"
    save_file(tiny_model().state_dict(), str(weights))
    spec_file = write_spec_file(TINY, tmp_path / "tiny.json")
    for argv in (["import", str(weights), "--arch", str(spec_file), "--name", "t"], ["tag", "t@1", "best"]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert "is a file, not a folder" in result.output or "lies under a file" in result.output, result.output


def test_listing_fits_80_columns_and_never_cuts_a_reference(tmp_path):
    from datetime import datetime

    from reszoo import LatencyRecord

    url = str(tmp_path / "r.db")
    long_name = "a-rather-long-entry-name-for-a-wide-resnet-variant"
    device = "cpu Intel(R) Xeon(R) Platinum 8480+ with a long model name (2 threads)"
    with Registry(url) as registry:
        record = registry.add(long_name, tiny_model(), dataset="cifar10", metrics={"top1": 0.5})
        registry.add_latency(
            LatencyRecord(record.arch_digest, device, 1, "float32", "eager", 16.646, 17.0, 100, {}, datetime.now(UTC))
        )
    result = CliRunner().invoke(app, ["--registry", url, "list", "a-*", "--device", "xeon"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    assert "…" not in result.output and "..." not in result.output and "16.6 ms" in result.output
    # The name folds over two lines of its column; nothing of it, its "@1" least of all, is cut.
    assert "a-rather-long-entry-name-for-" in result.output and "a-wide-resnet-variant@1" in result.output


def test_registry_is_accepted_after_the_command_and_remotes_are_never_created_by_accident(tmp_path):
    url = str(tmp_path / "r.db")
    with Registry(url) as registry:
        registry.add("tiny", tiny_model(), dataset="cifar10")
    for argv in (
        ["--registry", url, "list", "tiny"],
        ["list", "tiny", "--registry", url],
        ["list", f"--registry={url}", "tiny"],
    ):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0 and "tiny@1" in result.output, (argv, result.output)
    result = CliRunner().invoke(app, ["publish", "tiny", "--registry", url, "--remote", str(tmp_path / "new.db")])
    assert result.exit_code == 1 and "add --create to start a new SQLite registry there" in result.output
    assert not (tmp_path / "new.db").exists()


def test_a_read_only_registry_says_so_at_once_instead_of_busy(tmp_path, monkeypatch):
    import sqlalchemy.exc as sa_exc

    registry = Registry(tmp_path / "r.db")

    def readonly(session):
        raise sa_exc.OperationalError("INSERT", {}, Exception("attempt to write a readonly database"))

    began = time.monotonic()
    with pytest.raises(reszoo.RegistryError, match="cannot be written"):
        registry._write(readonly)
    assert time.monotonic() - began < 1  # no eight retries


def test_import_takes_an_entrys_architecture_and_never_duplicates_weights(tmp_path):
    url = str(tmp_path / "r.db")
    with Registry(url) as registry:
        registry.add("tiny", tiny_model(), dataset="cifar10")
        registry.export("tiny", tmp_path / "w.safetensors")
    first = CliRunner().invoke(
        app, ["--registry", url, "import", str(tmp_path / "w.safetensors"), "--arch", "tiny", "--name", "copy"]
    )
    assert first.exit_code == 0 and "imported copy@1" in first.output, first.output
    again = CliRunner().invoke(
        app, ["--registry", url, "import", str(tmp_path / "w.safetensors"), "--arch", "tiny", "--name", "copy"]
    )
    assert again.exit_code == 0 and "copy@1 already holds these weights" in again.output
    assert [e.ref for e in Registry(url).list("copy", all_versions=True)] == ["copy@1"]
    folder = CliRunner().invoke(app, ["--registry", str(tmp_path), "list"])
    assert folder.exit_code == 1 and "is a folder; give a registry file such as" in folder.output


def test_show_arch_shows_the_preset_where_an_entry_has_its_name(tmp_path):
    url = str(tmp_path / "r.db")
    with Registry(url) as registry:
        registry.add("resnet20", tiny_model(), dataset="cifar10")
    entry = CliRunner().invoke(app, ["--registry", url, "show", "resnet20", "--json"])
    preset = CliRunner().invoke(app, ["--registry", url, "show", "resnet20", "--arch", "--json"])
    assert json.loads(entry.output)["kind"] == "entry"
    assert json.loads(preset.output)["params"] == 269_722  # the paper's resnet20, not the entry's tiny net


def test_one_rule_for_architecture_arguments(tmp_path):
    """A preset or spec file first, then an entry's architecture: the same for every command."""
    from reszoo.zoo.factory import resolve_arch

    url = str(tmp_path / "r.db")
    with Registry(url) as registry:
        registry.add("resnet20", tiny_model())  # an entry that shadows a preset name
        registry.add("my-net", tiny_model())
        assert resolve_arch("resnet20", registry).stage_widths == (16, 32, 64)  # the preset
        assert resolve_arch("resnet20@1", registry) == TINY  # the entry, asked for by version
        assert resolve_arch("my-net", registry) == TINY  # no preset of that name: the entry
        with pytest.raises(reszoo.UnknownModelError, match="did you mean"):
            resolve_arch("resnt20", registry)


def test_a_card_shows_a_free_form_recipe_and_odd_metrics_without_a_traceback(tmp_path):
    url = str(tmp_path / "r.db")
    with Registry(url) as registry:
        registry.add("odd", tiny_model(), recipe={"lr": 0.1, "epochs": 10}, metrics={"test_images": "all"})
        registry.add("odd2", tiny_model(), recipe={"lr": "0.1"})
    for name in ("odd", "odd2"):
        result = CliRunner().invoke(app, ["--registry", url, "show", name])
        assert result.exit_code == 0, result.output
        assert '"lr"' in result.output  # shown as the JSON it is


def test_a_safetensors_header_with_an_absurd_offset_is_refused_in_one_line(tmp_path):
    from reszoo.zoo.weights import read_weights_file

    header = b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1e400]}}'
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(reszoo.WeightsError, match="not a valid safetensors file"):
        read_weights_file(path)


@pytest.mark.parametrize(
    "row, message",
    [
        ({}, "NOT NULL constraint failed"),  # every required column missing
        # SQLite writes one transaction at a time, so no concurrent writer explains a dangling reference.
        (
            {
                "arch_digest": "no-such-architecture",
                "device": "cpu",
                "batch_size": 1,
                "dtype": "float32",
                "runtime": "eager",
                "median_ms": 1.0,
                "p90_ms": 1.0,
                "samples": 1,
            },
            "FOREIGN KEY constraint failed",
        ),
    ],
)
def test_a_constraint_failure_is_reported_at_once_as_a_bug_not_as_busy(tmp_path, row, message):
    """Only a lost race (a unique key taken meanwhile) is worth another attempt: a NOT NULL
    failure is the same every time, and "stayed busy; try again" would send the user waiting."""
    from datetime import datetime

    import sqlalchemy as sa

    from reszoo.zoo.schema import Latency

    registry = Registry(tmp_path / "r.db")
    attempts = []

    def incomplete(session):
        attempts.append(1)
        session.add(Latency(**row, **({"measured_at": datetime.now(UTC)} if row else {})))
        session.flush()

    with pytest.raises(reszoo.RegistryError, match=f"refused the write: {message}.*bug in reszoo") as err:
        registry._write(incomplete)
    assert "busy" not in str(err.value) and len(attempts) == 1
    with registry.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Latency)).scalar() == 0
