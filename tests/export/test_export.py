"""An entry leaves reszoo as a Hugging Face model folder or an ONNX file, and comes back
from the folder unchanged; all offline (a Hub download is faked)."""

import hashlib
import json

import pytest
import torch
from typer.testing import CliRunner

import reszoo
from reszoo import EntryNotFoundError, IntegrityError, Registry, WeightsError
from reszoo.cli.app import app
from reszoo.export import hf
from reszoo.zoo.hub import local_url
from tests.helpers import TINY, need_onnx, outputs, tiny_model, tiny_zoo

runner = CliRunner()


def export(*argv: str, code: int = 0):
    result = runner.invoke(app, ["export", *argv])
    assert result.exit_code == code, result.output
    return result


def test_the_zoos_resnet20_exported_as_a_hub_folder_loads_back_with_equal_outputs(tmp_path):
    assert runner.invoke(app, ["pull", "resnet20"]).exit_code == 0
    out = tmp_path / "resnet20-hf"
    export("resnet20", "--format", "hf", "--out", str(out))
    record = Registry(local_url()).get("resnet20")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "curves.png", "model.safetensors"]
    assert hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest() == record.blob_sha256

    trained, loaded, again = reszoo.load("resnet20"), reszoo.load(str(out)), reszoo.from_pretrained(out)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x)) and torch.equal(again(x), trained(x))
    assert loaded.pretrained_cfg == trained.pretrained_cfg  # preprocessing, class names, sha256 travel too
    assert str(reszoo.data_transform(loaded)) == str(reszoo.data_transform(trained))

    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "resnet20" and config["num_classes"] == 10
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32] and config["pretrained_cfg"]["mean"]
    assert (
        config["reszoo"]["spec"] == record.spec.to_dict() and config["reszoo"]["weights_sha256"] == record.blob_sha256
    )

    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: reszoo" in card and "license: apache-2.0" in card
    for fact in (
        f"{100 * record.top1:.2f}%",
        record.blob_sha256,
        record.arch_digest,
        "## Latency",
        "NVIDIA H200",
        "| epoch | iteration |",
        "![training and test error against iterations](curves.png)",
        "SGD lr 0.1",
        "reszoo pull resnet20@2",
        "## Licence",
    ):
        assert fact in card, fact


def test_timms_save_for_hf_works_on_a_loaded_model(tmp_path):
    from timm.models import save_for_hf

    model = reszoo.load("resnet20")
    assert model.pretrained_cfg["architecture"] == "resnet20"
    save_for_hf(model, tmp_path / "timm", safe_serialization=True)
    config = json.loads((tmp_path / "timm" / "config.json").read_text())
    assert config["architecture"] == "resnet20" and config["pretrained_cfg"]["mean"] == list(
        model.pretrained_cfg["mean"]
    )


def test_from_pretrained_reads_a_hub_repository_through_huggingface_hubs_cache(tmp_path, monkeypatch):
    registry = tiny_zoo(tmp_path / "zoo.db")
    folder = tmp_path / "snapshot"
    hf.save_folder(registry, "tiny", folder)
    calls = []

    def snapshot_download(repo_id, **kwargs):  # huggingface_hub's, offline: the "download" is the folder
        calls.append((repo_id, kwargs))
        return str(folder)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    model = reszoo.from_pretrained("someone/tiny-reszoo", revision="main")
    assert torch.equal(outputs(model), outputs(registry.load("tiny")))
    assert model.pretrained_cfg["hf_hub_id"] == "someone/tiny-reszoo"
    assert calls == [
        (
            "someone/tiny-reszoo",
            {
                "revision": "main",
                "cache_dir": None,
                "local_files_only": False,
                "token": None,
                "allow_patterns": ["config.json", "model.safetensors"],
            },
        )
    ]
    assert reszoo.load("hf-hub:someone/tiny-reszoo", num_classes=5).fc.out_features == 5
    card = (folder / "README.md").read_text()
    assert "tiny@2" in card and "curves.png" in card and "0.250" in card  # its latency row


def test_a_changed_or_foreign_folder_is_refused(tmp_path):
    registry = tiny_zoo(tmp_path / "zoo.db")
    folder = tmp_path / "hf"
    hf.save_folder(registry, "tiny", folder)
    with pytest.raises(EntryNotFoundError, match="no model folder"):
        reszoo.load(str(tmp_path / "nowhere"))
    config = json.loads((folder / "config.json").read_text())
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (folder / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        reszoo.load(str(folder))
    hf.save_folder(registry, "tiny", folder, overwrite=True)
    (folder / "config.json").write_text(
        json.dumps({**config, "reszoo": {**config["reszoo"], "spec": {**config["reszoo"]["spec"], "num_classes": 4}}})
    )
    with pytest.raises(WeightsError, match="the folder was changed"):
        reszoo.load(str(folder))
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet18"}))  # a timm folder
    with pytest.raises(WeightsError, match="not a folder reszoo wrote"):
        reszoo.load(str(folder))


def test_export_refuses_to_replace_a_folder_without_force(tmp_path):
    registry = tiny_zoo(tmp_path / "zoo.db")
    args = ["--registry", registry.url, "export", "tiny-plain", "--format", "hf", "--out", str(tmp_path / "hf")]
    assert runner.invoke(app, args).exit_code == 0
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "already holds" in refused.stderr and "--force" in refused.stderr
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    unknown = runner.invoke(app, ["--registry", registry.url, "export", "tiny", "--format", "zip", "--out", "x"])
    assert unknown.exit_code == 2 and "--format must be one of safetensors, hf, onnx" in unknown.stderr


def test_an_onnx_runtime_session_leaves_the_process_its_subnormal_floats():
    need_onnx()
    from reszoo.export.onnx import inference_session, onnx_bytes

    smallest_normal = 2.2250738585072014e-308
    shape = (TINY.in_chans, TINY.resolved_input_size, TINY.resolved_input_size)
    inference_session(onnx_bytes(tiny_model(0, TINY), shape))  # ONNX Runtime's default threads
    assert smallest_normal / 2 > 0.0, "flush-to-zero left on: every later float computation loses subnormals"


@pytest.mark.parametrize("family", ["residual", "plain", "highway"])
def test_onnx_export_has_a_free_batch_size_and_matches_eager(tmp_path, family):
    need_onnx()
    import onnx
    import onnxruntime

    spec = TINY.with_overrides(family=family)
    registry = Registry(tmp_path / "r.db")
    registry.add("net", tiny_model(0, spec), dataset="synthetic", data={"mean": [0.5] * 3, "std": [0.25] * 3})
    out = tmp_path / "net.onnx"
    result = runner.invoke(app, ["--registry", registry.url, "export", "net", "--format", "onnx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    diff = float(result.stdout.split("max abs diff against eager PyTorch: ")[1].split()[0])
    assert diff < 1e-4

    model = onnx.load(out)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["reszoo.ref"] == "net@1" and meta["reszoo.arch_digest"] == spec.digest
    assert json.loads(meta["pretrained_cfg"])["mean"] == [0.5] * 3
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    eager = registry.load("net")
    for batch in (1, 5):
        x = torch.randn(batch, 3, 8, 8)
        (logits,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            assert torch.allclose(torch.from_numpy(logits), eager(x), atol=1e-4)
    refused = runner.invoke(app, ["--registry", registry.url, "export", "net", "--format", "onnx", "--out", str(out)])
    assert refused.exit_code == 2 and "already exists" in refused.stderr


def test_without_the_onnx_extra_the_error_says_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    registry = Registry(tmp_path / "r.db")
    registry.add("net", tiny_model(0), dataset="synthetic")
    result = runner.invoke(
        app, ["--registry", registry.url, "export", "net", "--format", "onnx", "--out", str(tmp_path / "net.onnx")]
    )
    assert result.exit_code == 2 and "needs onnxruntime" in result.stderr and "reszoo[onnx]" in result.stderr
    bench = runner.invoke(app, ["--registry", registry.url, "bench", "net", "--runtime", "onnxruntime"])
    assert bench.exit_code == 2 and "pip install 'reszoo[onnx]'" in bench.stderr
