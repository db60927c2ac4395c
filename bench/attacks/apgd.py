"""APGD (Croce & Hein 2020), AutoAttack's gradient parts, on their own: `torchattacks.APGD`
with the cross-entropy (`apgd-ce`) or DLR loss (`apgd-dlr`), and `torchattacks.APGDT`, the
targeted DLR version over the top `n_classes - 1` other classes (`apgd-t`).

Defaults are the ones torchattacks' AutoAttack composes them with (10 steps, 1 restart), so
`apgd-ce` with defaults is exactly AutoAttack's first stage. The original AutoAttack runs
100 steps: set `steps = 100` to match it. The class count comes from the model's output.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchattacks
from torch import nn

from bench import defaults
from bench.attacks import (
    TORCHATTACKS_NORM,
    EpsilonResult,
    check_norm,
    output_classes,
)
from bench.attacks.sweep import attack_sweep

NORMS = ("linf", "l2")
# DLR divides by z_(1) - z_(3), targeted DLR by z_(1) - (z_(3) + z_(4))/2: they need that many.
MIN_CLASSES = {"apgd-ce": 2, "apgd-dlr": 3, "apgd-t": 4}


def make_apgd(model: nn.Module, epsilon: float, *, loss: str, norm: str, steps: int,
              restarts: int, seed: int) -> torchattacks.APGD:
    return torchattacks.APGD(model, norm=TORCHATTACKS_NORM[norm], eps=float(epsilon),
                             steps=int(steps), n_restarts=int(restarts), seed=int(seed),
                             loss=loss)


def make_apgdt(model: nn.Module, epsilon: float, *, norm: str, steps: int, restarts: int,
               seed: int, n_classes: int) -> torchattacks.APGDT:
    return torchattacks.APGDT(model, norm=TORCHATTACKS_NORM[norm], eps=float(epsilon),
                              steps=int(steps), n_restarts=int(restarts), seed=int(seed),
                              n_classes=int(n_classes))


def apgd_ce_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                  batch_size: int | None = None, device: str | torch.device | None = None, *,
                  norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                  restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                  progress: bool = False) -> list[EpsilonResult]:
    return _apgd_sweep("apgd-ce", model, x, y, epsilons, batch_size, device, norm=norm,
                       steps=steps, restarts=restarts, seed=seed, offset=offset, progress=progress)


def apgd_dlr_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                   batch_size: int | None = None, device: str | torch.device | None = None, *,
                   norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                   restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                   progress: bool = False) -> list[EpsilonResult]:
    return _apgd_sweep("apgd-dlr", model, x, y, epsilons, batch_size, device, norm=norm,
                       steps=steps, restarts=restarts, seed=seed, offset=offset, progress=progress)


def apgd_t_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                 batch_size: int | None = None, device: str | torch.device | None = None, *,
                 norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                 restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                 progress: bool = False) -> list[EpsilonResult]:
    return _apgd_sweep("apgd-t", model, x, y, epsilons, batch_size, device, norm=norm,
                       steps=steps, restarts=restarts, seed=seed, offset=offset, progress=progress)


def _apgd_sweep(name, model, x, y, epsilons, batch_size, device, *, norm, steps, restarts,
                seed, offset, progress) -> list[EpsilonResult]:
    check_norm(name, norm, NORMS)
    device = x.device if device is None else device
    n_classes = require_classes(name, output_classes(model, x, device), MIN_CLASSES[name])
    params = {"attack": name, "norm": norm, "steps": int(steps), "restarts": int(restarts),
              "n_classes": n_classes}
    if name == "apgd-t":
        def make(eps):
            return make_apgdt(model, eps, norm=norm, steps=steps, restarts=restarts, seed=seed,
                              n_classes=n_classes)
    else:
        loss = name.removeprefix("apgd-")
        params["loss"] = loss

        def make(eps):
            return make_apgd(model, eps, loss=loss, norm=norm, steps=steps, restarts=restarts,
                             seed=seed)
    return attack_sweep(model, x, y, epsilons, batch_size, device, make, params=params,
                        seed=seed, offset=offset, progress=progress)


def require_classes(attack: str, n_classes: int, minimum: int) -> int:
    if n_classes < minimum:
        raise ValueError(f"{attack} needs a model with at least {minimum} outputs (classes); "
                         f"this one has {n_classes}")
    return n_classes
