"""PGD (Madry et al. 2018) through torchattacks: a fresh object per (model, ε), seeded.

- L∞ with cross-entropy: `torchattacks.PGD`; L2: `torchattacks.PGDL2` (cross-entropy only:
  torchattacks has no other loss for it; APGD-DLR covers DLR in L2).
- L∞ with `loss = "dlr"` (Croce & Hein 2020) or `"cw"` (Carlini & Wagner's margin, κ = 0):
  `torchattacks.UPGD(loss="dlr" | "margin", decay=0, eot_iter=1)`. Without momentum, UPGD's
  step sign(g / mean|g|) is PGD's sign(g); where g is all zero, 0/0 gives NaN and
  torch.sign(NaN) = 0, PGD's step there too. tests/test_attacks_pgd.py proves
  UPGD(loss="ce", decay=0) equal to torchattacks.PGD bit for bit, random start included.
  torchattacks' margin takes the largest *other* logit over (1 - onehot) * logits, so the
  true class counts as 0 there; that is its CW loss, used as is.
- `restarts > 1`: `torchattacks.MultiAttack` of that many fresh attacks; each runs on the
  samples the previous ones did not break and the first success is kept, so a sample counts
  as robust only if it survives every restart.

torchattacks draws the random start from the global torch RNG, so every call runs inside
`bench.seeding.seeded`: results are reproducible, one ε's result does not depend on the other ε in the
list, and the caller's RNG state is untouched.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torchattacks
from torch import nn

from bench import defaults
from bench.attacks import EpsilonResult, attack_mode, check_norm
from bench.attacks.sweep import attack_sweep
from bench.seeding import seeded

NORMS = ("linf", "l2")
LOSSES = ("ce", "dlr", "cw")
UPGD_LOSS = {"dlr": "dlr", "cw": "margin"}  # bench's loss name -> torchattacks.UPGD's


def default_alpha(epsilon: float, steps: int) -> float:
    """The evaluation step rule, defined once in bench/defaults.py (2.5·ε/steps)."""
    return defaults.pgd_eval_alpha(epsilon, steps)


def make_pgd(model: nn.Module, epsilon: float, steps: int, alpha: float | None = None,
             random_start: bool = True, *, norm: str = "linf", loss: str = "ce",
             restarts: int = 1) -> torchattacks.attack.Attack:
    """The torchattacks object for one (model, ε): see the module docstring for which."""
    check_pgd(norm, loss, restarts)
    step = default_alpha(epsilon, steps) if alpha is None else float(alpha)
    common = dict(eps=float(epsilon), alpha=step, steps=int(steps), random_start=random_start)

    def one() -> torchattacks.attack.Attack:
        if norm == "l2":
            return torchattacks.PGDL2(model, **common)
        if loss == "ce":
            return torchattacks.PGD(model, **common)
        return torchattacks.UPGD(model, **common, loss=UPGD_LOSS[loss], decay=0.0, eot_iter=1)

    return one() if restarts == 1 else torchattacks.MultiAttack([one() for _ in range(restarts)])


def check_pgd(norm: str, loss: str, restarts: int) -> None:
    check_norm("pgd", norm, NORMS)
    if loss not in LOSSES:
        raise ValueError(f"pgd: loss {loss!r} is not one of {', '.join(LOSSES)}")
    if norm == "l2" and loss != "ce":
        raise ValueError(f"pgd: loss {loss!r} needs norm 'linf' (torchattacks' PGDL2 has only "
                         "cross-entropy; use apgd-dlr for DLR in L2)")
    if restarts < 1:
        raise ValueError(f"pgd: restarts must be at least 1, got {restarts}")


def step_size(attack: torchattacks.attack.Attack) -> dict:
    """The step size the attack really uses (the first restart's: they all share it)."""
    first = attack.attacks[0] if isinstance(attack, torchattacks.MultiAttack) else attack
    return {"alpha": float(first.alpha)}


def pgd_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilons: Sequence[float],
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    *,
    steps: int = defaults.PGD_STEPS,
    alpha: float | None = None,
    random_start: bool = True,
    restarts: int = defaults.RESTARTS,
    loss: str = defaults.PGD_LOSS,
    norm: str = defaults.NORM,
    seed: int = 0,
    offset: int = 0,
    progress: bool = False,
) -> list[EpsilonResult]:
    """One `EpsilonResult` per ε; the random starts of ε are seeded by `seed` alone, batch by
    batch (bench.attacks.sweep: `offset` is where `x` starts among the evaluated examples).
    `alpha=None` is 2.5·ε/steps for each ε (recorded resolved in `params["alpha"]`)."""
    check_pgd(norm, loss, restarts)
    params = {"attack": "pgd", "norm": norm, "steps": int(steps), "random_start": random_start,
              "restarts": int(restarts), "loss": loss}
    return attack_sweep(
        model, x, y, epsilons, batch_size, device,
        lambda eps: make_pgd(model, eps, steps, alpha, random_start, norm=norm, loss=loss,
                             restarts=restarts),
        params=params, seed=seed, offset=offset, progress=progress, describe=step_size)


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
    """Adversarial images for one batch on `x`'s device (L∞, cross-entropy). The random start
    is seeded by `seed`, else by a number drawn from `generator`, else 0."""
    if seed is None:
        seed = 0 if generator is None else int(
            torch.randint(2**62, (1,), generator=generator, device=generator.device))
    with attack_mode(model, x.device), seeded(seed, x.device):
        return make_pgd(model, epsilon, steps, alpha, random_start)(x, y)
