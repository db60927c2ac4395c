"""PGD (Madry et al. 2018): `torchattacks.PGD`, a fresh object per (model, ε), seeded.

torchattacks draws PGD's random start from the global torch RNG, so every call runs inside
`torch.random.fork_rng`, seeded explicitly: results are reproducible, the sweep's result for
one ε does not depend on the other ε in the list, and the caller's RNG state is untouched.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchattacks
from torch import nn

from bench.attacks import (
    EpsilonResult,
    attack_mode,
    input_gradient,
    is_eval_mode,
    iter_batches,
    linf_per_sample,
    zero_fraction,
)
from bench.seeding import seeded


def default_alpha(epsilon: float, steps: int) -> float:
    """2.5·ε/steps (Madry et al.): enough to cross the ε-ball and still reach its corners."""
    return 2.5 * epsilon / steps


def make_pgd(model: nn.Module, epsilon: float, steps: int, alpha: float | None = None,
             random_start: bool = True) -> torchattacks.PGD:
    step = default_alpha(epsilon, steps) if alpha is None else float(alpha)
    return torchattacks.PGD(model, eps=float(epsilon), alpha=step, steps=int(steps),
                            random_start=random_start)


def pgd_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    *,
    steps: int,
    alpha: float | None = None,
    random_start: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> list[EpsilonResult]:
    """One `EpsilonResult` per ε; the random starts of ε are seeded by `seed` alone."""
    batch_size = batch_size or max(1, len(y))
    device = x.device if device is None else device
    results = []
    with attack_mode(model, device):
        zeros = entries = 0  # at the clean inputs, like the FGSM sweep, so the two compare
        for xb, yb in iter_batches(x, y, batch_size, device):
            z, n = zero_fraction(input_gradient(model, xb, yb))
            zeros, entries = zeros + z, entries + n
        zero_frac = zeros / entries if entries else float("nan")
        for eps in (float(e) for e in epsilons):
            attack = make_pgd(model, eps, steps, alpha, random_start)
            eval_mode = is_eval_mode(model)
            preds, linfs = [], []
            with seeded(seed, device):
                for xb, yb in iter_batches(x, y, batch_size, device, progress, f"pgd ε={eps:g}"):
                    x_adv = attack(xb, yb)
                    with torch.inference_mode():
                        preds.append(model(x_adv).argmax(1).cpu())
                    linfs.append(linf_per_sample(x_adv, xb).cpu())
            results.append(EpsilonResult(
                eps,
                torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long),
                torch.cat(linfs) if linfs else torch.zeros(0, dtype=x.dtype),
                zero_frac, repr(attack), eval_mode))
    return results


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    *,
    steps: int,
    alpha: float | None = None,
    random_start: bool = True,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adversarial images for one batch on `x`'s device. The random start is seeded by
    `seed`, else by a number drawn from `generator`, else 0."""
    if seed is None:
        seed = 0 if generator is None else int(
            torch.randint(2**62, (1,), generator=generator, device=generator.device))
    with attack_mode(model, x.device), seeded(seed, x.device):
        return make_pgd(model, epsilon, steps, alpha, random_start)(x, y)
