from __future__ import annotations

import torch

from payoff.meter import count_flops


def test_linear_forward_flops() -> None:
    layer = torch.nn.Linear(100, 10)
    x = torch.randn(32, 100)
    assert count_flops(lambda: layer(x)) == 2 * 32 * 100 * 10


def test_forward_and_backward_flops() -> None:
    layer = torch.nn.Linear(100, 10)
    x = torch.randn(32, 100, requires_grad=True)
    # Backward: grad wrt input and wrt weight, each as many FLOPs as the forward matmul.
    assert count_flops(lambda: layer(x).sum().backward()) == 3 * 2 * 32 * 100 * 10
