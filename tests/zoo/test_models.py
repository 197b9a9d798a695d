"""Builders and presets: every net runs, counts match the paper and timm."""

import pytest
import timm
import torch
from torch import nn

import reszoo
from reszoo.zoo.blocks import HIGHWAY_GATE_BIAS, ZeroPadShortcut
from reszoo.zoo.network import build
from reszoo.zoo.presets import PRESETS

# Run for real on the CPU unless the net is big; big ones go through the meta
# device, which checks every shape without computing anything.
BIG = {"resnet101", "resnet152", "resnet1202"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_and_runs_at_its_input_size(name):
    spec = PRESETS[name]
    device = "meta" if name in BIG else "cpu"
    torch.manual_seed(0)
    model = reszoo.create_model(name, device=device).eval()
    batch = 2
    x = torch.randn(batch, spec.in_chans, spec.input_size, spec.input_size, device=device)
    with torch.no_grad():
        features = model.forward_features(x)
        out = model.forward_head(features)
    assert out.shape == (batch, spec.num_classes)
    assert features.shape[1] == model.num_features == spec.feature_dim
    assert model.forward_head(features, pre_logits=True).shape == (batch, spec.feature_dim)
    if device == "cpu":
        assert torch.isfinite(out).all()
        assert torch.equal(out, model(x))


# Table 6 of He et al. (2015): parameters of the CIFAR-10 ResNets, in millions.
PAPER_PARAMS_M = {
    "resnet20": (0.27, 2),
    "resnet32": (0.46, 2),
    "resnet44": (0.66, 2),
    "resnet56": (0.85, 2),
    "resnet110": (1.7, 1),
    "resnet1202": (19.4, 1),
}


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS_M))
def test_cifar_param_counts_round_to_the_papers_table_6(name):
    figure, digits = PAPER_PARAMS_M[name]
    params = reszoo.count(reszoo.get_spec(name)).params
    assert round(params / 1e6, digits) == figure


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_net_has_exactly_its_residual_twins_params_under_shortcut_a(depth):
    residual, plain = reszoo.get_spec(f"resnet{depth}"), reszoo.get_spec(f"plain{depth}")
    assert residual.shortcut == "A"
    assert reszoo.count(plain).params == reszoo.count(residual).params
    real = sum(p.numel() for p in reszoo.create_model(plain).parameters())
    assert real == reszoo.count(residual).params


@pytest.mark.parametrize("name", ["resnet20", "highway56", "resnet50", "plain34"])
def test_block_wise_counting_equals_counting_the_whole_net(name):
    from torch.utils.flop_counter import FlopCounterMode

    spec = reszoo.get_spec(name)
    model = build(spec, device="meta").eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, spec.in_chans, spec.input_size, spec.input_size, device="meta"))
    counts = reszoo.count(spec)
    assert counts.params == sum(p.numel() for p in model.parameters())
    assert counts.macs == counter.get_total_flops() // 2


def test_resnet20_macs_match_the_usual_figure():
    # 40.55M multiply-accumulates is the figure other CIFAR ResNet-20 codes report.
    assert reszoo.count(reszoo.get_spec("resnet20")).macs == 40_551_040
    # Named as everywhere else in the API: a preset name, a mapping of spec fields.
    assert reszoo.count("resnet20") == reszoo.count(reszoo.get_spec("resnet20").to_dict())
    assert reszoo.count("resnet20").macs == 40_551_040
    with pytest.raises(reszoo.UnknownModelError, match="unknown model 'resnet21'"):
        reszoo.count("resnet21")


@pytest.mark.parametrize("name", ["resnet34", "resnet50"])
def test_timm_weights_load_strictly_and_give_the_same_output(name):
    torch.manual_seed(0)
    theirs = timm.create_model(name, pretrained=False).eval()
    ours = reszoo.create_model(name).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet18", "resnet101", "resnet152"])
def test_timm_state_dict_keys_and_shapes_match(name):
    theirs = timm.create_model(name, pretrained=False, device="meta")
    ours = reszoo.create_model(name, device="meta")
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_cifar_stem_resnet34_keeps_timm_names():
    ours = reszoo.create_model("resnet34", num_classes=10, stem="cifar")
    timm_keys = timm.create_model("resnet34", pretrained=False, device="meta").state_dict().keys()
    assert ours.state_dict().keys() == timm_keys
    assert ours.conv1.kernel_size == (3, 3) and isinstance(ours.maxpool, nn.Identity)
    assert ours(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_shortcut_styles_differ_where_the_paper_says():
    a = reszoo.create_model("resnet20")
    b = reszoo.create_model("resnet20", shortcut="B")
    c = reszoo.create_model("resnet20", shortcut="C")
    shortcuts = lambda m: [blk.downsample for stage in m.stages() for blk in stage]  # noqa: E731
    # A: parameter-free zero padding only at the two stage transitions.
    assert [type(s) for s in shortcuts(a) if s is not None] == [ZeroPadShortcut, ZeroPadShortcut]
    # B: projections at the two transitions; C: a projection in all nine blocks.
    assert sum(s is not None for s in shortcuts(b)) == 2
    assert sum(s is not None for s in shortcuts(c)) == 9
    pa, pb, pc = (reszoo.count(m.spec).params for m in (a, b, c))
    assert pa < pb < pc


def test_zero_pad_shortcut_is_subsampled_identity():
    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, stride=2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert not y[:, 16:].any()


def test_highway_block_starts_close_to_carrying_its_input():
    model = reszoo.create_model("highway20")
    gates = [blk.gate for stage in model.stages() for blk in stage]
    assert len(gates) == 9
    assert all(torch.all(g.bias == HIGHWAY_GATE_BIAS) for g in gates)
    block = model.layer1[1]  # shapes match: identity carry
    x = torch.randn(4, 16, 32, 32)
    with torch.no_grad():
        transformed = block.act2(block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x))))))
        t = torch.sigmoid(block.gate(x))
        torch.testing.assert_close(block(x), t * transformed + (1 - t) * x)
    assert 0.0 < t.mean().item() < 0.3  # mostly carry at initialisation


def test_plain_block_has_no_shortcut():
    model = reszoo.create_model("plain20").eval()
    block = model.layer1[0]
    with torch.no_grad():
        x = torch.randn(1, 16, 32, 32)
        expected = block.act2(block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x))))))
        assert torch.equal(block(x), expected)


def test_odd_input_sizes_work_with_every_shortcut():
    for family, shortcut in [
        ("residual", "A"),
        ("residual", "B"),
        ("residual", "C"),
        ("highway", "B"),
        ("plain", None),
    ]:
        for block in ("basic", "bottleneck"):
            model = reszoo.create_model(
                "resnet20", family=family, shortcut=shortcut, block=block, input_size=29, stage_depths=(1, 1, 1)
            )
            assert model(torch.randn(1, 3, 29, 29)).shape == (1, 10)
            assert model.spec.stage_output_sizes() == (29, 15, 8)


def test_create_model_accepts_a_dict_and_rejects_other_types():
    assert reszoo.create_model({"stage_depths": [1, 1], "stage_widths": [4, 8]}).spec.depth == 6
    with pytest.raises(reszoo.SpecError, match="got int"):
        reszoo.create_model(42)
