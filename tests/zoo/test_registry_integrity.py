"""An entry is one hashed record: its links (architecture, weights) and its facts
are covered by a record digest checked on every read, so none can be re-pointed
or edited unnoticed; and `reszoo show` verifies what it shows."""

import json
import shutil
import sqlite3

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import reszoo
from reszoo import IntegrityError, Registry
from reszoo.cli.app import app
from reszoo.zoo.hub import SHIPPED_REGISTRY
from reszoo.zoo.schema import SCHEMA_REVISION
from tests.conftest import BACKENDS
from tests.helpers import TINY, blobs_as_before_0004, tiny_model

#: Two nets with the same tensors (shortcut A has no weights): weights of one load into the other.
RESIDUAL = TINY.with_overrides(shortcut="A")
PLAIN = TINY.with_overrides(family="plain", shortcut="none")
TAMPERED = "does not match its record digest"


def every_read(registry: Registry, ref: str, tmp_path) -> dict[str, object]:
    """What each way of reading ``ref`` gives: its result, or the error's text."""
    reads = {
        "get": lambda: registry.get(ref),
        "list": lambda: registry.list(),
        "load": lambda: registry.load(ref),
        "verify": lambda: registry.verify(ref),
        "export": lambda: registry.export(ref, tmp_path / "out.safetensors", overwrite=True),
        "pull": lambda: Registry(f"sqlite:///{tmp_path / 'pulled.db'}").pull(ref, registry),
    }
    out: dict[str, object] = {}
    for name, read in reads.items():
        try:
            out[name] = read()
        except reszoo.ReszooError as exc:
            out[name] = exc
    return out


def tamper(registry: Registry, sql: str, **params) -> None:
    with registry.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


@BACKENDS
def test_an_entry_re_pointed_at_another_architecture_is_refused(make_registry_url, tmp_path):
    registry = Registry(make_registry_url())
    registry.add("tiny", tiny_model(spec=RESIDUAL))
    registry.add_architecture(PLAIN)
    assert reszoo.count(PLAIN).params == reszoo.count(RESIDUAL).params
    tamper(registry, "UPDATE entries SET arch_digest = :d", d=PLAIN.digest)
    for read, outcome in every_read(registry, "tiny@1", tmp_path).items():
        assert isinstance(outcome, IntegrityError) and TAMPERED in str(outcome), (read, outcome)
    assert "Remove it (reszoo rm tiny@1) and pull it again" in str(outcome)


@BACKENDS
def test_an_entry_re_pointed_at_another_stored_blob_is_refused(make_registry_url, tmp_path):
    registry = Registry(make_registry_url())
    registry.add("a", tiny_model(0))
    other = registry.add("b", tiny_model(1))
    tamper(registry, "UPDATE entries SET blob_sha256 = :sha WHERE name = 'a'", sha=other.blob_sha256)
    for read, outcome in every_read(registry, "a", tmp_path).items():
        assert isinstance(outcome, IntegrityError) and TAMPERED in str(outcome), (read, outcome)
    assert registry.load("b") is not None  # the other entry is sound


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE entries SET top1 = 0.99",
        "UPDATE entries SET metrics_json = '{\"top1\": 0.99}'",
        "UPDATE entries SET data_json = '{\"mean\": [0, 0, 0]}'",
        "UPDATE entries SET version = 7",
        "UPDATE entries SET name = 'other'",
        "UPDATE blobs SET dtypes = 'float16:19'",
        "UPDATE entries SET record_digest = NULL",
    ],
)
def test_an_edited_fact_of_an_entry_is_refused(tmp_path, sql):
    registry = Registry(tmp_path / "r.db")
    registry.add("tiny", tiny_model(), metrics={"top1": 0.5}, data={"mean": [0.5, 0.5, 0.5]})
    tamper(registry, sql)
    with pytest.raises(IntegrityError, match=TAMPERED):
        registry.list()


def test_a_tampered_entry_is_removed_then_pulled_again(tmp_path):
    remote, local = Registry(tmp_path / "remote.db"), Registry(tmp_path / "local.db")
    remote.add("tiny", tiny_model(spec=RESIDUAL))
    local.pull("tiny", remote)
    local.add_architecture(PLAIN)
    tamper(local, "UPDATE entries SET arch_digest = :d", d=PLAIN.digest)
    result = CliRunner().invoke(app, ["--registry", local.url, "rm", "tiny@1", "--yes"])
    assert result.exit_code == 0 and "removed tiny@1" in result.output, result.output
    local.pull("tiny", remote)
    assert local.load("tiny").spec == RESIDUAL


def test_show_verifies_the_weights_it_shows(tmp_path):
    registry = Registry(tmp_path / "r.db")
    registry.add("tiny", tiny_model())
    card = CliRunner().invoke(app, ["--registry", registry.url, "show", "tiny"])
    assert card.exit_code == 0 and "verified       weights, architecture and the entry's record digest" in card.output
    shown = json.loads(CliRunner().invoke(app, ["--registry", registry.url, "show", "tiny", "--json"]).output)
    assert shown["verified"] == {"weights": True, "architecture": True, "record": True}
    data = registry.blob("tiny")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01  # one flipped byte among the tensors
    tamper(registry, "UPDATE blobs SET data = :d, encoding = ''", d=bytes(flipped))  # as stored raw
    for argv in (["show", "tiny"], ["show", "tiny@1", "--json"]):
        result = CliRunner().invoke(app, ["--registry", registry.url, *argv])
        assert result.exit_code == 1 and "sha256 mismatch" in result.output, result.output


def _as_schema_0002(path) -> None:
    blobs_as_before_0004(path)
    conn = sqlite3.connect(path)
    conn.executescript("ALTER TABLE entries DROP COLUMN record_digest; UPDATE alembic_version SET version_num = '0002'")
    conn.close()


def test_an_older_registry_says_it_is_unverified_until_its_first_write_adds_the_digests(tmp_path):
    path = tmp_path / "old.db"
    with Registry(path) as registry:
        registry.add("tiny", tiny_model(spec=RESIDUAL))
        registry.add("damaged", tiny_model(1))
        registry.add("plain", tiny_model(2, PLAIN))
    _as_schema_0002(path)
    conn = sqlite3.connect(path)  # damaged before the upgrade: never blessed by it
    conn.execute(
        "UPDATE blobs SET data = substr(data, 1, 64) WHERE sha256 = "
        "(SELECT blob_sha256 FROM entries WHERE name = 'damaged')"
    )
    conn.commit()
    conn.close()
    with Registry(path) as registry:
        assert not registry.record_digests and registry.get("tiny").ref == "tiny@1"
        card = CliRunner().invoke(app, ["--registry", str(path), "show", "tiny"])
        assert card.exit_code == 0 and "links and metrics were not checked" in card.output, card.output
        registry.tag("tiny@1", "best")  # the first write upgrades the schema
        assert registry.record_digests and registry.revision == SCHEMA_REVISION
        assert registry.load("tiny:best").spec == RESIDUAL
        with pytest.raises(IntegrityError, match=TAMPERED):
            registry.get("damaged")
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE entries SET arch_digest = (SELECT arch_digest FROM entries WHERE name = 'plain') WHERE name = 'tiny'"
    )
    conn.commit()
    conn.close()
    with Registry(path) as registry, pytest.raises(IntegrityError, match=TAMPERED):
        registry.load("tiny")


def test_the_shipped_registry_upgrades_to_record_digests_as_the_lead_will_apply_it(tmp_path):
    """``python tools/make_registry.py registry.db`` migrates the shipped zoo and settles it."""
    import importlib.util
    from pathlib import Path

    path = tmp_path / "registry.db"
    shutil.copy2(SHIPPED_REGISTRY, path)
    with Registry(path) as shipped:
        refs = [e.ref for e in shipped.list(all_versions=True)]
    spec = importlib.util.spec_from_file_location(
        "make_registry", Path(reszoo.__file__).parents[1] / "tools" / "make_registry.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(str(path))
    assert path.read_bytes()[18:20] == b"\x01\x01" and sorted(p.name for p in tmp_path.iterdir()) == ["registry.db"]
    with Registry(path, readonly=True) as upgraded:
        assert upgraded.revision == SCHEMA_REVISION and upgraded.record_digests
        assert [e.ref for e in upgraded.list(all_versions=True)] == refs
        assert upgraded.verify("resnet20@2").top1 > 0.8
