"""Count the floating-point operations of a PyTorch computation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def count_flops(fn: Callable[[], Any]) -> int:
    """Run `fn` once under PyTorch's FLOP counter and return the FLOPs it performed.

    Counts the operators PyTorch's ``torch.utils.flop_counter`` knows (matmuls,
    convolutions, attention; forward and, if `fn` calls it, backward); a multiply-add is
    2 FLOPs. Elementwise operations are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())
