"""AutoAttack (Croce & Hein 2020) through `torchattacks.AutoAttack`, the evaluation
RobustBench ranks models by: a fresh object per (model, ε), seeded by the suite seed.

Versions, as torchattacks composes them (a `MultiAttack`: each part attacks the samples the
previous ones did not break, and the first success is kept, so the result is the per-sample
worst case over the parts):
  standard: APGD-CE, APGD-T, FAB-T, Square (5000 queries)
  plus:     APGD-CE and APGD-DLR (5 restarts each), FAB (5 restarts), Square, APGD-T, FAB-T
  rand:     APGD-CE and APGD-DLR with 20 EOT iterations, for randomised defences

torchattacks builds its gradient parts (APGD, APGD-T, FAB) with 10 steps; the original
AutoAttack (fra31/auto-attack, used by RobustBench) runs 100. `steps` sets the parts' step
count on the fresh object: 10, the default, leaves torchattacks' AutoAttack unchanged (a
test proves the rows equal to calling it directly); 100 matches the original's iterations.
Its Square stage keeps torchattacks' step-size schedule (the original disables it).
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
VERSIONS = ("standard", "plus", "rand")
# Parts whose iteration count `steps` sets (Square counts queries, not steps).
STEPPED_PARTS = (torchattacks.APGD, torchattacks.APGDT, torchattacks.FAB)


def make_autoattack(model: nn.Module, epsilon: float, *, norm: str, version: str,
                    n_classes: int, seed: int,
                    steps: int = defaults.PGD_STEPS) -> torchattacks.AutoAttack:
    if version not in VERSIONS:
        raise ValueError(f"autoattack: version {version!r} is not one of {', '.join(VERSIONS)}")
    attack = torchattacks.AutoAttack(model, norm=TORCHATTACKS_NORM[norm], eps=float(epsilon),
                                     version=version, n_classes=int(n_classes), seed=int(seed))
    for part in parts(attack):
        if isinstance(part, STEPPED_PARTS):
            part.steps = int(steps)
    return attack


def parts(attack: torchattacks.AutoAttack) -> list[torchattacks.attack.Attack]:
    """The attacks AutoAttack runs in order (torchattacks keeps them in a private MultiAttack)."""
    inner = getattr(attack, "_autoattack", None)
    if not isinstance(inner, torchattacks.MultiAttack):
        raise RuntimeError(f"torchattacks {torchattacks.__version__}: AutoAttack no longer keeps "
                           "its parts in `_autoattack`; bench.attacks.autoattack needs updating")
    return list(inner.attacks)


def describe(attack: torchattacks.AutoAttack) -> dict:
    """The parts with their own settings (AutoAttack's repr does not show them)."""
    return {"parts": " | ".join(repr(p) for p in parts(attack))}


def autoattack_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     epsilons: Sequence[float], batch_size: int | None = None,
                     device: str | torch.device | None = None, *, norm: str = defaults.NORM,
                     version: str = defaults.AUTOATTACK_VERSION,
                     steps: int = defaults.PGD_STEPS, seed: int = 0, offset: int = 0,
                     progress: bool = False) -> list[EpsilonResult]:
    check_norm("autoattack", norm, NORMS)
    device = x.device if device is None else device
    minimum = 4 if version in ("standard", "plus") else 3  # APGD-T's targeted DLR; DLR
    n_classes = require_classes(f"autoattack ({version})", output_classes(model, x, device),
                                minimum)
    params = {"attack": "autoattack", "norm": norm, "version": version, "steps": int(steps),
              "n_classes": n_classes}

    def make(eps):
        return make_autoattack(model, eps, norm=norm, version=version, n_classes=n_classes,
                               seed=seed, steps=steps)

    return attack_sweep(model, x, y, epsilons, batch_size, device, make, params=params,
                        seed=seed, offset=offset, progress=progress, describe=describe)
