"""The one optimiser builder and the learning-rate schedule of bench's training recipes.

Every optimiser for a `TrainConfig` comes from `make_optimizer`, so training and the
throughput train-step time the same update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR

if TYPE_CHECKING:
    from bench.suite.schema import TrainConfig

WARMUP_FRACTION = 0.2  # of all steps, for the one-cycle learning-rate schedule


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: "TrainConfig") -> torch.optim.Optimizer:
    """Adam, or SGD with (Nesterov) momentum, with L2 weight decay on every parameter."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        # Nesterov at zero momentum is plain SGD, which torch only accepts as nesterov=False.
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
    """Linear warm-up to `lr` over the first 20% of steps, then linear decay to zero, stepped
    once per batch. Wong et al. 2020 credit this kind of cyclic schedule for both short
    training and fewer catastrophic-overfitting runs."""
    warmup = max(1, int(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)
