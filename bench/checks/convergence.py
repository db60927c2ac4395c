"""PGD convergence: does PGD with 5× the steps and restarts do better on a subset?

If a stronger PGD lowers accuracy beyond chance, the suite's PGD had not converged, and its
accuracy overstates robustness (Carlini et al. 2019, §5.4: "verify that the attack has
converged"). The stronger PGD keeps the loss, norm and seed; its step is the configured
`alpha` when one was set, else 2.5·ε/steps of its own steps (the same distance travelled in
finer steps). It starts at random points, as its restarts need (restarts from the clean point
would all find the same example). It runs on a seeded random subset, paired example by example
with the suite's PGD on the same examples (McNemar, bench.checks.paired).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from bench import defaults
from bench.attacks import EpsilonResult
from bench.attacks.pgd import pgd_sweep
from bench.checks.paired import describe, mcnemar_greater
from bench.checks.verdict import Outcome

CHECK = "pgd_convergence"


def convergence_subset(n: int, size: int = defaults.CONVERGENCE_SAMPLE,
                       seed: int = 0) -> torch.Tensor:
    """Sorted indices of a seeded random subset of min(size, n) of n examples."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen)[:size].sort().values


def stronger_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                 batch_size: int, device: str | torch.device, *, steps: int,
                 alpha: float | None, restarts: int, loss: str, norm: str, seed: int,
                 factor: int = defaults.CONVERGENCE_FACTOR) -> list[EpsilonResult]:
    """PGD with `factor`× the steps and restarts of the suite's, over the same ε."""
    return pgd_sweep(model, x, y, epsilons, batch_size, device, steps=steps * factor,
                     alpha=alpha, random_start=True, restarts=restarts * factor, loss=loss,
                     norm=norm, seed=seed)


def convergence_outcome(clean_correct, pgd_correct, stronger_correct, *, epsilon: float,
                        factor: int = defaults.CONVERGENCE_FACTOR,
                        alpha: float = defaults.CHECK_ALPHA) -> Outcome:
    """Robust correctness (right clean and attacked) under the suite's PGD and the stronger
    one, on the same examples: fails when the stronger one is better beyond chance."""
    clean = np.asarray(clean_correct, dtype=bool)
    base = clean & np.asarray(pgd_correct, dtype=bool)
    strong = clean & np.asarray(stronger_correct, dtype=bool)
    test = mcnemar_greater(base, strong)
    seen = (f"at ε = {epsilon:g}, PGD with {factor}× the steps and restarts: robust accuracy "
            f"{strong.mean():.3f} against {base.mean():.3f}; "
            f"{describe(test, 'the suite PGD', f'{factor}× PGD')}")
    if test.p_value >= alpha:
        return Outcome(CHECK, True, test.difference, seen, test.p_value)
    return Outcome(CHECK, False, test.difference, (
        f"{seen}: PGD had not converged, so its accuracy overstates robustness; raise its "
        "steps and restarts, or use APGD or AutoAttack"), test.p_value)
