"""Work per step, counted by `torch.utils.flop_counter.FlopCounterMode`.

The counter sees matmuls and convolutions (forward and backward) and counts 2 FLOPs per
multiply-add; element-wise work (activations, optimiser updates, the attack's sign and clamp)
is not counted, so achieved FLOP/s is a lower bound on the arithmetic done.
"""

from __future__ import annotations

from typing import Callable

from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (which runs once, eagerly, for the count)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def achieved_tflops(flops_per_step: int, seconds_per_step: float) -> float:
    if seconds_per_step <= 0 or flops_per_step <= 0:
        return float("nan")
    return flops_per_step / seconds_per_step / 1e12
