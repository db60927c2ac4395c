"""The ε sweep shared by every attack that is one torchattacks object per (model, ε).

For each ε: a fresh attack object (`make_attack(eps)`), the batches in order, all under
`bench.seeding.seeded(seed)`. torchattacks draws random starts from the global RNG, and APGD, FAB and
Square even call `torch.manual_seed(self.seed)` themselves; forking the RNG keeps both
away from the caller's state and makes one ε's result independent of the other ε listed.
Calling the same attack on the same batches with the same seed gives the same adversarial
images, which is what tests/test_attacks_autoattack.py checks, sample for sample.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
import torchattacks
from torch import nn

from bench.attacks import (
    EpsilonResult,
    attack_mode,
    iter_batches,
    l2_per_sample,
    linf_per_sample,
)
from bench.seeding import seeded

AttackFactory = Callable[[float], torchattacks.attack.Attack]


def attack_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    batch_size: int | None,
    device: str | torch.device | None,
    make_attack: AttackFactory,
    *,
    params: Mapping[str, Any],
    seed: int = 0,
    progress: bool = False,
    describe: Callable[[torchattacks.attack.Attack], Mapping[str, Any]] | None = None,
) -> list[EpsilonResult]:
    """One `EpsilonResult` per ε. `params` (with "attack" and "norm") are recorded with each
    result, completed by ε, the seed and `describe(attack)` (e.g. the parts' reprs)."""
    batch_size = batch_size or max(1, len(y))
    device = x.device if device is None else device
    results = []
    with attack_mode(model, device):
        for eps in (float(e) for e in epsilons):
            attack = make_attack(eps)
            with seeded(seed, device):
                pred, linf, l2 = _attack_batches(model, attack, x, y, batch_size, device,
                                                 progress, f"{params['attack']} ε={eps:g}")
            extra = dict(describe(attack)) if describe is not None else {}
            results.append(EpsilonResult(
                eps, pred, linf, repr(attack), adv_correct=pred == y.cpu(), l2=l2, norm=params["norm"],
                params={**params, "epsilon": eps, "seed": int(seed), **extra}))
    return results


def _attack_batches(model, attack, x, y, batch_size, device, progress, desc):
    preds, linfs, l2s = [], [], []
    for xb, yb in iter_batches(x, y, batch_size, device, progress, desc):
        x_adv = attack(xb, yb)
        with torch.inference_mode():
            preds.append(model(x_adv).argmax(1).cpu())
        linfs.append(linf_per_sample(x_adv, xb).cpu())
        l2s.append(l2_per_sample(x_adv, xb).cpu())
    return _cat(preds, torch.long), _cat(linfs, x.dtype), _cat(l2s, x.dtype)


def _cat(parts: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)
