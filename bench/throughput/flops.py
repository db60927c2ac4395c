"""Work per step, counted by `torch.utils.flop_counter.FlopCounterMode`.

The counter sees matmuls and convolutions (forward and backward) and counts 2 FLOPs per
multiply-add; element-wise work (activations, optimiser updates, the attack's sign and clamp)
is not counted, so achieved FLOP/s is a lower bound on the arithmetic done.
"""

from __future__ import annotations

from typing import Callable

from torch.utils.flop_counter import FlopCounterMode


class _GlobalOnly:
    """Stands in for FlopCounterMode's ModuleTracker: every op counts towards "Global" only.

    The tracker's module hooks break `torch.autograd.grad` with respect to a module's input
    ("A leaf node was passed to _will_engine_execute_node ...", pytorch/pytorch#131753), which
    is exactly what the attacks do; per-module attribution is not needed here.
    """

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (which runs once, eagerly, for the count)."""
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    return int(counter.get_total_flops())


def achieved_tflops(flops_per_step: int, seconds_per_step: float) -> float:
    if seconds_per_step <= 0 or flops_per_step <= 0:
        return float("nan")
    return flops_per_step / seconds_per_step / 1e12
