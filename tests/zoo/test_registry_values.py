"""Values at the registry's API edge: each bad one is refused before anything is
written, in one line that names the value, what was expected and what to do."""

import math

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import reszoo
from reszoo import Registry
from reszoo.cli.app import app
from reszoo.zoo.spec import write_spec_file
from tests.helpers import TINY, tiny_model


@pytest.mark.parametrize(
    "dtype, message",
    [
        (torch.int8, "weights_dtype must be a floating dtype to store weights in: float16, bfloat16 or float32"),
        ("bogus", "got 'bogus'"),
        (torch.float64, "got torch.float64"),
        (5, "got 5"),
    ],
)
def test_a_weights_dtype_that_cannot_load_is_refused_before_writing(tmp_path, dtype, message):
    registry = Registry(tmp_path / "r.db")
    with pytest.raises(reszoo.InputError, match=message) as error:
        registry.add("tiny", tiny_model(), weights_dtype=dtype)
    assert "\n" not in str(error.value) and "leave it out" in str(error.value)
    assert registry.list() == []


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "float16", "torch.bfloat16", torch.float32])
def test_every_weights_dtype_accepted_loads(tmp_path, dtype):
    registry = Registry(tmp_path / "r.db")
    registry.add("tiny", tiny_model(), weights_dtype=dtype)
    assert registry.load("tiny").fc.weight.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(min_top1="abc"), "min_top1 is a top-1 fraction from 0 to 1 .* got 'abc'"),
        (dict(min_top1=math.nan), "min_top1 is a top-1 fraction from 0 to 1 .* got nan"),
        (dict(min_top1=91), "got 91"),
        (dict(min_top1=True), "got True"),
        (
            dict(max_latency_ms=math.nan, device="cpu"),
            "max_latency_ms must be a number of milliseconds above 0 .* got nan",
        ),
        (dict(max_latency_ms=-5, device="cpu"), "got -5"),
        (dict(max_latency_ms="1", device="cpu"), "got '1'"),
        (dict(batch_size=0), "batch_size must be an integer from 1 to"),
        (dict(family="resnet"), "family must be one of residual, plain, highway, got 'resnet'"),
        (dict(dataset=5), "dataset must be text"),
    ],
)
def test_list_filters_of_the_wrong_kind_are_refused_not_an_empty_list(tmp_path, kwargs, message):
    registry = Registry(tmp_path / "r.db")
    registry.add("tiny", tiny_model(), metrics={"top1": 0.5})
    with pytest.raises(reszoo.InputError, match=message) as error:
        registry.list(**kwargs)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(notes=5), "notes must be text of at most 20000 characters, got 5"),
        (dict(notes="x" * 20_001), "notes must be text of at most 20000 characters"),
        (dict(parent=5), "parent must be a reference .* got 5"),
    ],
)
def test_entry_facts_of_the_wrong_kind_are_refused(tmp_path, kwargs, message):
    registry = Registry(tmp_path / "r.db")
    with pytest.raises(reszoo.InputError, match=message):
        registry.add("tiny", tiny_model(), **kwargs)
    assert registry.list() == []


@pytest.mark.parametrize("name", ["", "*", "tiny*", "a b", "@1"])
def test_import_refuses_a_name_that_is_no_entry_name_even_for_stored_weights(tmp_path, name):
    url = str(tmp_path / "r.db")
    weights = tmp_path / "w.safetensors"
    save_file(tiny_model().state_dict(), str(weights))
    spec = write_spec_file(TINY, tmp_path / "tiny.json")
    first = CliRunner().invoke(app, ["--registry", url, "import", str(weights), "--arch", str(spec), "--name", "tiny"])
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(app, ["--registry", url, "import", str(weights), "--arch", str(spec), "--name", name])
    assert result.exit_code == 2, result.output
    assert f"entry name {name!r} is not valid" in result.output and "already holds" not in result.output
    assert [e.ref for e in Registry(url).list(all_versions=True)] == ["tiny@1"]
