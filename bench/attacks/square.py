"""Square (Andriushchenko et al. 2020), a score-based black-box attack through
`torchattacks.Square` (margin loss, p_init 0.8, torchattacks' step-size schedule). It needs
no gradient, so it is the stage of AutoAttack that gradient masking cannot fool.
Default budget: 5000 queries, AutoAttack's own.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchattacks
from torch import nn

from bench import defaults
from bench.attacks import TORCHATTACKS_NORM, EpsilonResult, check_norm
from bench.attacks.sweep import attack_sweep

NORMS = ("linf", "l2")


def make_square(model: nn.Module, epsilon: float, *, norm: str, queries: int, restarts: int,
                seed: int) -> torchattacks.Square:
    return torchattacks.Square(model, norm=TORCHATTACKS_NORM[norm], eps=float(epsilon),
                               n_queries=int(queries), n_restarts=int(restarts), seed=int(seed))


def square_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                 batch_size: int | None = None, device: str | torch.device | None = None, *,
                 norm: str = defaults.NORM, queries: int = defaults.SQUARE_QUERIES,
                 restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                 progress: bool = False) -> list[EpsilonResult]:
    check_norm("square", norm, NORMS)
    params = {"attack": "square", "norm": norm, "queries": int(queries),
              "restarts": int(restarts)}

    def make(eps):
        return make_square(model, eps, norm=norm, queries=queries, restarts=restarts, seed=seed)

    return attack_sweep(model, x, y, epsilons, batch_size, device, make, params=params,
                        seed=seed, offset=offset, progress=progress)
