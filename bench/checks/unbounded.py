"""Unbounded ε: PGD at a budget that reaches every image must break nearly every example.

With inputs in [0, 1], ε = 1 in L∞ (or the cube's diagonal, sqrt(pixels), in L2) lets the
attacker replace an image by any other, including one of another class. If PGD still leaves
examples correct there, it is not reaching the model: the model ignores its input, clamps or
quantises it, or masks its gradients (Carlini et al. 2019, §5.2). PGD runs with a random
start and the default 2.5·ε/steps step, so 10 steps cross the whole cube more than twice.
Accuracy here counts an example right under attack whatever its clean prediction
(`adv_acc`): an unbounded attack has no excuse for leaving any example right.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench import defaults
from bench.attacks.pgd import pgd_sweep
from bench.checks.verdict import Outcome

CHECK = "unbounded_epsilon"


def unbounded_epsilon(norm: str, x: torch.Tensor) -> float:
    """The budget that reaches every image in [0, 1]^d from any other."""
    if norm == "linf":
        return 1.0
    if norm == "l2":
        return math.sqrt(x[0].numel())
    raise ValueError(f"unbounded ε: unknown norm {norm!r}")


def unbounded_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       device: str | torch.device, *, batch_size: int, norm: str = defaults.NORM,
                       steps: int = defaults.PGD_STEPS, seed: int = 0) -> tuple[float, float]:
    """(ε, share of the examples still right under PGD at the unbounded ε)."""
    if len(y) == 0:
        raise ValueError("the unbounded-ε check needs at least one example")
    eps = unbounded_epsilon(norm, x)
    (result,) = pgd_sweep(model, x, y, [eps], batch_size, device, steps=steps, norm=norm,
                          seed=seed)
    return eps, float(result.adv_correct.double().mean())


def unbounded_outcome(accuracy: float, epsilon: float, n: int, *, norm: str,
                      max_accuracy: float = defaults.UNBOUNDED_MAX_ACC) -> Outcome:
    seen = f"PGD at ε = {epsilon:.3g} ({norm}) leaves {accuracy:.1%} of {n} examples right"
    if accuracy <= max_accuracy:
        return Outcome(CHECK, True, accuracy, f"{seen} (at most {max_accuracy:.0%} allowed)")
    return Outcome(CHECK, False, accuracy, (
        f"{seen}: at a budget that reaches every image it should break nearly all, so the "
        "attack is not reaching the model (an input it ignores, clamps or quantises, or "
        "masked gradients) and its accuracies at smaller ε are not to be trusted"))


def unbounded_epsilon_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                            device: str | torch.device, *, batch_size: int,
                            norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                            seed: int = 0) -> Outcome:
    eps, acc = unbounded_accuracy(model, x, y, device, batch_size=batch_size, norm=norm,
                                  steps=steps, seed=seed)
    return unbounded_outcome(acc, eps, len(y), norm=norm)
