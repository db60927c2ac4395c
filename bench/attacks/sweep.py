"""The ε sweep shared by every attack that is one torchattacks object per (model, ε).

For each ε: a fresh attack object (`make_attack(eps)`), then the batches in order, each under
its own seed (`bench.seeding.block_seed(seed, position of its first example)`, positions
counted from `offset`, where the examples `x` start in the whole evaluation). torchattacks
draws random starts from the global RNG, and APGD, FAB and Square even call
`torch.manual_seed(self.seed)` themselves; forking the RNG keeps both away from the caller's
state and makes one ε's result independent of the other ε listed, and seeding per batch makes
one batch's result independent of the other batches: a sample shard of whole batches
(bench/cells/robustness.py) gets exactly the adversarial examples the unsharded evaluation
gets for them. Calling the same attack on the same batches, each seeded the same way, gives
the same adversarial images, which tests/test_attacks_torchattacks.py checks, sample for sample.
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
from bench.seeding import block_seed, seeded

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
    offset: int = 0,
    progress: bool = False,
    describe: Callable[[torchattacks.attack.Attack], Mapping[str, Any]] | None = None,
) -> list[EpsilonResult]:
    """One `EpsilonResult` per ε. `params` (with "attack" and "norm") are recorded with each
    result, completed by ε, the seed and `describe(attack)` (e.g. the parts' reprs).
    `offset`: the position of x[0] among the evaluated examples (a shard's first example)."""
    batch_size = batch_size or max(1, len(y))
    device = x.device if device is None else device
    results = []
    with attack_mode(model, device):
        for eps in (float(e) for e in epsilons):
            attack = make_attack(eps)
            pred, linf, l2 = _attack_batches(model, attack, x, y, batch_size, device, progress,
                                             f"{params['attack']} ε={eps:g}", seed, offset)
            extra = dict(describe(attack)) if describe is not None else {}
            results.append(EpsilonResult(
                eps, pred, linf, repr(attack), adv_correct=pred == y.cpu(), l2=l2, norm=params["norm"],
                params={**params, "epsilon": eps, "seed": int(seed), **extra}))
    return results


def _attack_batches(model, attack, x, y, batch_size, device, progress, desc, seed, offset):
    preds, linfs, l2s = [], [], []
    for start, (xb, yb) in zip(range(0, len(y), batch_size),
                               iter_batches(x, y, batch_size, device, progress, desc)):
        with seeded(block_seed(seed, offset + start), device):
            x_adv = attack(xb, yb)
        with torch.inference_mode():
            preds.append(model(x_adv).argmax(1).cpu())
        linfs.append(linf_per_sample(x_adv, xb).cpu())
        l2s.append(l2_per_sample(x_adv, xb).cpu())
    return _cat(preds, torch.long), _cat(linfs, x.dtype), _cat(l2s, x.dtype)


def _cat(parts: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)
