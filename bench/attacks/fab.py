"""FAB (Croce & Hein 2020), minimum-norm attack, through `torchattacks.FAB`: untargeted
(`fab`) and multi-targeted over the top `n_classes - 1` other classes (`fab-t`, the form
AutoAttack's standard version runs). An adversarial point further than ε counts as a failure
(torchattacks returns the clean image for it), so accuracies are at budget ε.

Defaults are torchattacks' (10 steps, 1 restart), the ones its AutoAttack uses; the original
AutoAttack runs 100 steps. The class count comes from the model's output.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchattacks
from torch import nn

from bench import defaults
from bench.attacks import TORCHATTACKS_NORM, EpsilonResult, check_norm, output_classes
from bench.attacks.apgd import require_classes
from bench.attacks.sweep import attack_sweep

NORMS = ("linf", "l2")


def make_fab(model: nn.Module, epsilon: float, *, targeted: bool, norm: str, steps: int,
             restarts: int, seed: int, n_classes: int) -> torchattacks.FAB:
    return torchattacks.FAB(model, norm=TORCHATTACKS_NORM[norm], eps=float(epsilon),
                            steps=int(steps), n_restarts=int(restarts), seed=int(seed),
                            multi_targeted=targeted, n_classes=int(n_classes))


def fab_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
              batch_size: int | None = None, device: str | torch.device | None = None, *,
              norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
              restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
              progress: bool = False) -> list[EpsilonResult]:
    return _fab_sweep("fab", model, x, y, epsilons, batch_size, device, norm=norm, steps=steps,
                      restarts=restarts, seed=seed, offset=offset, progress=progress)


def fab_t_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                batch_size: int | None = None, device: str | torch.device | None = None, *,
                norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                progress: bool = False) -> list[EpsilonResult]:
    return _fab_sweep("fab-t", model, x, y, epsilons, batch_size, device, norm=norm,
                      steps=steps, restarts=restarts, seed=seed, offset=offset, progress=progress)


def _fab_sweep(name, model, x, y, epsilons, batch_size, device, *, norm, steps, restarts, seed,
               offset, progress) -> list[EpsilonResult]:
    check_norm(name, norm, NORMS)
    device = x.device if device is None else device
    targeted = name == "fab-t"
    n_classes = require_classes(name, output_classes(model, x, device), 2)
    params = {"attack": name, "norm": norm, "steps": int(steps), "restarts": int(restarts),
              "n_classes": n_classes}

    def make(eps):
        return make_fab(model, eps, targeted=targeted, norm=norm, steps=steps,
                        restarts=restarts, seed=seed, n_classes=n_classes)

    return attack_sweep(model, x, y, epsilons, batch_size, device, make, params=params,
                        seed=seed, offset=offset, progress=progress)
