"""What a new user met following the README, registry side: a version not pulled
yet, a device with no stored latency, a public name taken by their own net, and
`reszoo eval` in a fresh home."""

import json
from datetime import UTC, datetime

import pytest
from safetensors.torch import save_file
from typer.testing import CliRunner

import reszoo
from reszoo import LatencyRecord, Registry
from reszoo.cli.app import app
from reszoo.zoo.hub import local_registry, local_url
from reszoo.zoo.spec import write_spec_file
from tests.helpers import TINY, tiny_model

runner = CliRunner()


def run(*args: str, code: int = 0):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


def test_a_version_not_pulled_yet_says_how_to_pull_it(tmp_path, monkeypatch):
    monkeypatch.delenv("RESZOO_REMOTE", raising=False)  # the shipped zoo: resnet20@1 (CPU) and @2 (GPU)
    fresh = run("show", "resnet20@1", code=2)
    assert "reszoo pull resnet20@1" in fresh.output and "unknown model" not in fresh.output
    assert "pulled resnet20@2" in run("pull", "resnet20").output
    result = run("show", "resnet20@1", code=2)
    assert "versions of 'resnet20': 2" in result.output and "reszoo pull resnet20@1 fetches it" in result.output
    run("pull", "resnet20@1")
    assert "resnet20@1" in run("show", "resnet20@1").output


def test_list_on_a_device_without_stored_latency_lists_and_names_the_stored_devices(tmp_path):
    url = str(tmp_path / "r.db")
    with Registry(url) as registry:
        record = registry.add("tiny", tiny_model(), dataset="cifar10", metrics={"top1": 0.5})
        registry.add_latency(
            LatencyRecord(
                record.arch_digest, "NVIDIA H200", 1, "float32", "graph", 0.4, 0.41, 100, {}, datetime.now(UTC)
            )
        )
    listed = run("--registry", url, "list", "tiny", "--device", "h100")
    assert "tiny@1" in listed.stdout
    assert "no latency stored for device 'h100'" in listed.stderr and "'NVIDIA H200'" in listed.stderr
    refused = run("--registry", url, "list", "--device", "h100", "--max-latency-ms", "1", code=2)
    assert "stored devices: 'NVIDIA H200'" in refused.output
    shown = run("--registry", url, "list", "tiny", "--device", "h200")
    assert "0.4 ms" in shown.stdout and shown.stderr == ""


def test_a_public_name_is_never_shadowed_silently(tmp_path, monkeypatch):
    remote = Registry(tmp_path / "team.db")
    remote.add("team-net", tiny_model(5))
    remote.close()
    monkeypatch.setenv("RESZOO_REMOTE", str(tmp_path / "team.db"))
    local = local_registry()
    for name in ("resnet20", "team-net"):  # a preset's name; an entry of the default remote
        with pytest.raises(reszoo.ConflictError, match=rf"'{name}' is a public name .* 'my-{name}'.*shadow=True"):
            local.add(name, tiny_model())
    assert local.list() == []
    assert local.add("resnet20", tiny_model(), shadow=True).ref == "resnet20@1"  # knowingly
    assert local.add("my-resnet20", tiny_model()).ref == "my-resnet20@1"
    assert Registry(tmp_path / "other.db").add("resnet20", tiny_model()).ref == "resnet20@1"  # not what load reads


def test_train_and_import_refuse_a_public_name_before_the_work(tmp_path):
    result = run("train", "resnet20", "--dataset", "synthetic:40", "--epochs", "1", "--publish", "resnet20", code=1)
    assert "'resnet20' is a public name" in result.output and "--shadow" in result.output
    assert "epoch" not in result.output  # refused before training, not after
    weights = tmp_path / "w.safetensors"
    save_file(tiny_model().state_dict(), str(weights))
    spec = write_spec_file(TINY, tmp_path / "tiny.json")
    refused = run("import", weights, "--arch", spec, "--name", "resnet56", code=1)
    assert "'resnet56' is a public name" in refused.output
    assert "imported resnet56@1" in run("import", weights, "--arch", spec, "--name", "resnet56", "--shadow").output


def test_eval_pulls_on_first_use_as_load_does(tmp_path, monkeypatch):
    monkeypatch.delenv("RESZOO_REMOTE", raising=False)
    result = run("eval", "resnet20@1", "--dataset", "synthetic:40", "--device", "cpu", "--json")
    assert json.loads(result.stdout)["ref"] == "resnet20@1"
    assert Registry(local_url()).get("resnet20@1").ref == "resnet20@1"  # pulled, as reszoo.load would
