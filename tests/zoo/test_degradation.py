"""The property the paper is about, at initialisation.

With BN and He initialisation, the gradient reaching the first conv of a plain
net grows by orders of magnitude with depth relative to the classifier's,
while shortcuts keep it within an order of magnitude at every depth.
"""

import pytest
import torch
import torch.nn.functional as F

import reszoo

DEPTHS = (20, 56, 110)


def first_to_last_gradient_ratio(name: str, seed: int = 0, batch: int = 32) -> float:
    """||dL/d conv1.weight|| / ||dL/d fc.weight|| on one random batch at initialisation."""
    torch.manual_seed(seed)
    model = reszoo.create_model(name).train()
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    F.cross_entropy(model(x), y).backward()
    return (model.conv1.weight.grad.norm() / model.fc.weight.grad.norm()).item()


@pytest.fixture(scope="module")
def ratios():
    return {
        f"{family}{d}": first_to_last_gradient_ratio(f"{family}{d}") for family in ("resnet", "plain") for d in DEPTHS
    }


def test_residual_gradients_stay_within_an_order_of_magnitude_across_depth(ratios):
    residual = [ratios[f"resnet{d}"] for d in DEPTHS]
    assert max(residual) / min(residual) < 10, residual
    assert all(0.01 < r < 10 for r in residual), residual


def test_plain_gradients_drift_by_orders_of_magnitude_with_depth(ratios):
    plain = [ratios[f"plain{d}"] for d in DEPTHS]
    assert plain[0] < plain[1] < plain[2], plain
    assert plain[1] / plain[0] > 10, plain
    assert plain[2] / plain[0] > 1000, plain


def test_shortcuts_make_the_difference_at_equal_depth(ratios):
    for d in (56, 110):
        assert ratios[f"plain{d}"] / ratios[f"resnet{d}"] > 100
