"""Small models and weights shared by the registry tests."""

import torch

import reszoo

TINY = reszoo.ArchSpec(stage_depths=(1, 1), stage_widths=(4, 8), num_classes=3, input_size=8)


def tiny_model(seed: int = 0, spec: reszoo.ArchSpec = TINY) -> reszoo.ReszooNet:
    torch.manual_seed(seed)
    model = reszoo.create_model(spec)
    with torch.no_grad():  # BN statistics that differ from the defaults, so they are checked too
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    return model.eval()


def outputs(model: torch.nn.Module, seed: int = 1) -> torch.Tensor:
    spec = model.spec
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, spec.in_chans, spec.input_size, spec.input_size, generator=generator)
    with torch.no_grad():
        return model.eval()(x)
