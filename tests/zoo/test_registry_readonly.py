"""Reading never writes: a registry reszoo wrote reads from a read-only file,
folder or mount, as any user, in every form a location can be given, and a
read changes no byte of it and leaves no file beside it."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import reszoo
from reszoo import Registry
from reszoo.cli.app import app
from reszoo.zoo.hub import SHIPPED_REGISTRY
from tests.helpers import REPO, blobs_as_before_0004, tiny_model

NOBODY = 65534


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in ``folder``: its sha256 and modification time."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
    }


def in_wal_mode(path: Path) -> bool:
    return path.read_bytes()[18:20] == b"\x02\x02"


def test_reading_the_shipped_registry_changes_no_byte_and_leaves_no_file(tmp_path):
    folder = tmp_path / "clone"
    folder.mkdir()
    path = folder / "registry.db"
    shutil.copy2(SHIPPED_REGISTRY, path)
    assert not in_wal_mode(path)  # shipped settled
    before = fingerprint(folder)
    for argv in (["list"], ["show", "resnet20@1"], ["list", "--device", "h200"]):
        result = CliRunner().invoke(app, ["--registry", str(path), *argv])
        assert result.exit_code == 0, (argv, result.output)
    with Registry(path) as registry:
        assert registry.get("resnet20@1").ref == "resnet20@1"
        assert registry.load("resnet20@1") is not None
    assert Registry(f"sqlite:///{path}").list()
    assert fingerprint(folder) == before and not in_wal_mode(path)


def test_reading_a_wal_registry_in_a_writable_folder_changes_nothing(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    path = folder / "r.db"
    with Registry(path) as registry:
        registry.add("tiny", tiny_model())
    assert in_wal_mode(path)
    before = fingerprint(folder)
    with Registry(path) as registry:
        assert [e.ref for e in registry.list()] == ["tiny@1"] and registry.load("tiny") is not None
    assert fingerprint(folder) == before  # SQLite's -wal and -shm came and went with the reader


def test_sqlalchemys_uri_form_names_the_file(tmp_path):
    path = tmp_path / "r.db"
    with Registry(path) as registry:
        registry.add("tiny", tiny_model())
    before = fingerprint(tmp_path)
    registry = Registry(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert registry.readonly and [e.ref for e in registry.list()] == ["tiny@1"]
    with pytest.raises(reszoo.RegistryError, match="opened read-only"):
        registry.tag("tiny@1", "best")
    registry.close()
    assert fingerprint(tmp_path) == before
    writable = Registry(f"sqlite:///file:{path}?uri=true")
    assert writable.tag("tiny@1", "best").aliases == ("best",)


def test_an_empty_file_is_refused_and_left_empty(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    for open_it in (lambda: Registry(path), lambda: Registry(path, readonly=True)):
        with pytest.raises(reszoo.RegistryError, match=r"is an empty file \(0 bytes\), not a registry"):
            open_it()
    result = CliRunner().invoke(app, ["--registry", str(path), "tag", "x@1", "best"])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "empty file (0 bytes)" in result.output
    assert path.stat().st_size == 0 and [p.name for p in tmp_path.iterdir()] == ["empty.db"]


# ------------------------------------------------- as another user, read-only

#: Run in a child process: imports and a first read as this user, then (as root)
#: the switch to the user "nobody", then every way of reading the read-only copy.
AS_NOBODY = textwrap.dedent("""
    import json, os, sys
    from typer.testing import CliRunner
    import reszoo
    from reszoo.cli.app import app

    shared, warm = sys.argv[1], sys.argv[2]
    ro = os.path.join(shared, "ro", "registry.db")
    home = os.path.join(shared, "home")

    def cli(*argv, env=None):
        result = CliRunner().invoke(app, list(argv), env=env)
        return [result.exit_code, result.output]

    # Everything a read imports, imported while this user can read the interpreter's files.
    scratch = os.path.dirname(warm)
    reszoo.load("tiny", registry=os.path.join(scratch, "fresh.db"), remote=warm)
    cli("--registry", warm, "show", "tiny")
    cli("--registry", os.path.join(scratch, "fresh2.db"), "pull", "tiny", "--remote", warm)
    os.chdir(shared)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(%(nobody)d)
        os.setuid(%(nobody)d)
    os.environ["HOME"] = home
    out = {"uid": os.getuid()}
    out["list_readonly_url"] = [e.ref for e in reszoo.Registry("sqlite:///" + ro, readonly=True).list()]
    out["get_path"] = reszoo.Registry(ro).get("tiny@1").ref
    out["cli_list"] = cli("--registry", ro, "list")
    out["cli_show"] = cli("--registry", ro, "show", "tiny")
    out["cli_tag"] = cli("--registry", ro, "tag", "tiny@1", "best")
    out["cli_pull_path"] = cli("--registry", os.path.join(home, "a.db"), "pull", "tiny", "--remote", ro)
    out["load_url"] = reszoo.load("tiny", registry=os.path.join(home, "b.db"), remote="sqlite:///" + ro).spec.depth
    os.environ["RESZOO_REMOTE"] = ro
    os.environ["RESZOO_HOME"] = os.path.join(home, "env")
    out["load_env"] = reszoo.load("tiny@1").spec.depth
    out["cli_pull_env"] = cli("--registry", os.path.join(home, "c.db"), "pull", "tiny")
    # The local registry itself in a read-only folder: reading needs no write.
    os.environ["RESZOO_HOME"] = os.path.dirname(ro)
    out["local_list"] = cli("list", "tiny")
    out["local_show"] = cli("show", "tiny@1")
    out["local_load"] = reszoo.load("tiny").spec.depth
    # A copy taken while a writer had its log open: the -wal was never checkpointed.
    try:
        reszoo.Registry(os.path.join(shared, "live", "registry.db"), readonly=True)
        out["never_checkpointed"] = "read"
    except reszoo.RegistryError as exc:
        out["never_checkpointed"] = str(exc)
    print(json.dumps(out))
""") % {"nobody": NOBODY}


@pytest.fixture(scope="module")
def read_as_nobody():
    """A WAL-mode registry reszoo wrote, copied to a read-only folder and read by
    another user (nobody, when the tests run as root; else this user, whom the
    folder's mode stops alike): what each read gave, and the folder before and after."""
    if os.geteuid() != 0 and not hasattr(os, "setuid"):
        pytest.skip("needs a POSIX system")
    shared = Path(tempfile.mkdtemp(prefix="reszoo-ro-"))
    try:
        writer_dir = Path(tempfile.mkdtemp(prefix="reszoo-w-"))
        with Registry(writer_dir / "registry.db") as registry:
            registry.add("tiny", tiny_model(), dataset="synthetic")
        assert in_wal_mode(writer_dir / "registry.db")
        ro = shared / "ro"
        ro.mkdir()
        shutil.copy2(writer_dir / "registry.db", ro / "registry.db")
        live = shared / "live"
        live.mkdir()
        holder = sqlite3.connect(writer_dir / "registry.db")  # a writer that keeps the log open
        holder.execute("PRAGMA wal_autocheckpoint = 0")
        with Registry(writer_dir / "registry.db") as registry:
            registry.tag("tiny@1", "best")
            for name in ("registry.db", "registry.db-wal"):  # copied without its -shm index
                shutil.copy2(writer_dir / name, live / name)
        holder.close()
        os.chmod(live, 0o555)
        (shared / "home").mkdir()
        warm = writer_dir / "warm.db"
        shutil.copy2(writer_dir / "registry.db", warm)
        os.chmod(ro / "registry.db", 0o444)
        os.chmod(ro, 0o555)
        os.chmod(shared / "home", 0o777)
        os.chmod(shared, 0o755)
        before = fingerprint(ro)
        env = {**os.environ, "PYTHONPATH": str(REPO), "RESZOO_HOME": str(shared / "home" / "default")}
        env.pop("RESZOO_REMOTE", None)
        done = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, str(shared), str(warm)],
            env=env,
            cwd=shared,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield json.loads(done.stdout.strip().splitlines()[-1]), before, fingerprint(ro)
    finally:
        for folder in (shared / "ro", shared / "live"):
            os.chmod(folder, 0o755) if folder.exists() else None
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(writer_dir, ignore_errors=True)


def test_a_wal_registry_reads_from_a_read_only_folder_as_another_user(read_as_nobody):
    out, before, after = read_as_nobody
    assert out["uid"] != 0
    assert out["list_readonly_url"] == ["tiny@1"] and out["get_path"] == "tiny@1"
    assert out["cli_list"][0] == 0 and "tiny@1" in out["cli_list"][1], out["cli_list"]
    assert out["cli_show"][0] == 0 and "synthetic" in out["cli_show"][1], out["cli_show"]
    for key in ("cli_pull_path", "cli_pull_env"):
        assert out[key][0] == 0 and "pulled tiny@1" in out[key][1], out[key]
    assert out["load_url"] == out["load_env"] == 6  # TINY: a stem, two basic blocks and a head
    assert after == before  # not a byte changed, and nothing beside it


def test_a_read_only_local_registry_folder_still_lists_and_shows(read_as_nobody):
    out, _, _ = read_as_nobody
    assert out["local_list"][0] == 0 and "tiny@1" in out["local_list"][1], out["local_list"]
    assert out["local_show"][0] == 0 and "synthetic" in out["local_show"][1], out["local_show"]
    assert out["local_load"] == 6


def test_a_log_never_checkpointed_in_a_read_only_place_is_refused_not_misread(read_as_nobody):
    """Without the -shm index, reading the file alone would silently miss the log's writes."""
    out, _, _ = read_as_nobody
    assert "write-ahead log (registry.db-wal) that was never checkpointed" in out["never_checkpointed"]


def test_writing_a_read_only_registry_is_one_clear_line(read_as_nobody):
    out, _, _ = read_as_nobody
    code, text = out["cli_tag"]
    assert code == 1 and text.count("\n") == 1, text
    assert "cannot be written (a read-only file or folder); nothing was changed" in text


def test_an_older_schema_is_read_as_it_is_and_upgraded_by_the_first_write(tmp_path):
    from reszoo.zoo.schema import SCHEMA_REVISION

    path = tmp_path / "old.db"
    with Registry(path) as registry:
        registry.add("tiny", tiny_model())
    blobs_as_before_0004(path)
    conn = sqlite3.connect(path)  # as an older reszoo left it
    conn.executescript(
        "DROP TABLE latency_parts; ALTER TABLE entries DROP COLUMN record_digest; "
        "UPDATE alembic_version SET version_num = '0001'"
    )
    conn.close()
    before = fingerprint(tmp_path)
    with Registry(path) as registry:
        assert registry.get("tiny").ref == "tiny@1" and registry.part_latencies("cpu", "eager", 1, "float32") == {}
    assert fingerprint(tmp_path) == before
    with Registry(path) as registry:
        registry.tag("tiny@1", "best")
        assert registry.revision == SCHEMA_REVISION
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (SCHEMA_REVISION,)
    conn.close()


def test_opening_a_registry_keeps_the_locks_this_process_holds_on_it(tmp_path):
    """The file is only opened through SQLite: closing any other handle on it drops every
    POSIX lock this process holds on it, and a writer in another process could then
    checkpoint or delete the log under this process's readers (a publisher killed and
    restarted beside a reader corrupted the file this way)."""
    path = tmp_path / "r.db"
    with Registry(path) as registry:
        registry.add("tiny", tiny_model())
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM entries").fetchone()  # holds its read lock
    for readonly in (False, True):
        Registry(path, readonly=readonly).close()
    other = subprocess.run(  # another process may not take the file over while it is read here
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=0);"
            "print(c.execute('PRAGMA journal_mode = DELETE').fetchone()[0])",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    reader.close()
    assert "database is locked" in other.stderr, (other.stdout, other.stderr)
