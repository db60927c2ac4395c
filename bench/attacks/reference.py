"""The reference implementation: the original AutoAttack code (`pyautoattack`, Croce & Hein's
fra31/auto-attack, what RobustBench evaluates with), behind the same sweep signatures as the
torchattacks ones (`implementation = "reference"` in a suite; the reference extra).

Same settings as the torchattacks backend, mapped onto the original's arguments: ε, norm,
`steps` (n_iter of the APGD, APGD-T and FAB parts), `restarts`, `queries` (Square's
n_queries), AutoAttack's `version`, and the suite seed. Where the original fixes a setting
that torchattacks derives, the original's is kept and recorded: targeted attacks aim at the
top 9 other classes (n_target_classes = 9; fewer only when the model has fewer classes),
AutoAttack's Square stage runs without the step-size rescaling schedule, and the original's
own input checks run (a randomized defense, probability outputs: warnings in its logger).

One attack object per (model, ε), called once per batch (bench.attacks.sweep.attack_sweep):
each call is seeded the same way (`seeded(seed)`, and the original seeds itself with `seed`
too), so a batch's adversarial images do not depend on the batches before it, and an
evaluation split into shards gives the same per-example results as one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bench import defaults
from bench.attacks import TORCHATTACKS_NORM, EpsilonResult, check_norm, output_classes
from bench.attacks.apgd import MIN_CLASSES, require_classes
from bench.attacks.sweep import attack_sweep
from bench.reference_extra import import_pyautoattack
from bench.seeding import seeded

NORMS = ("linf", "l2")
TARGET_CLASSES = 9  # the original's n_target_classes for APGD-T and FAB-T
# What the original's APGD computes from n_iter when it is built (its step-size checkpoints).
APGD_SCHEDULE = ("n_iter", "n_iter_orig", "n_iter_2", "n_iter_min", "size_decr")


@dataclass
class ReferenceAttack:
    """An original-code attack object for one (model, ε), called like a torchattacks one:
    `attack(x, y) -> x_adv`, seeded afresh for every batch."""

    attack: Any  # a pyautoattack object
    run: Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]
    seed: int
    device: str | torch.device
    text: str  # repr: the class and the settings it runs with

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with seeded(self.seed, self.device):
            return self.run(self.attack, x, y).detach()

    def __repr__(self) -> str:
        return self.text


# The original's attack classes and the modules of pyautoattack that define them.
ORIGINAL_MODULES = {"APGDAttack": "autopgd_base", "APGDAttack_targeted": "autopgd_base",
                    "FABAttack_PT": "fab_pt", "SquareAttack": "square", "AutoAttack": "autoattack"}


def original(name: str) -> type:
    """One of the original's attack classes (ORIGINAL_MODULES), imported when first used."""
    return getattr(import_pyautoattack(ORIGINAL_MODULES[name]), name)


def target_classes(n_classes: int) -> int:
    return min(TARGET_CLASSES, n_classes - 1)


def _settings(name: str, **values) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in values.items())})"


def make_apgd(model: nn.Module, epsilon: float, *, loss: str, norm: str, steps: int,
              restarts: int, seed: int, device, n_classes: int) -> ReferenceAttack:
    """`apgd-ce` (APGDAttack, loss "ce") or `apgd-t` (APGDAttack_targeted) of the original."""
    common = dict(n_iter=int(steps), norm=TORCHATTACKS_NORM[norm], n_restarts=int(restarts),
                  eps=float(epsilon), seed=int(seed), eot_iter=1, rho=.75, device=device)
    if loss == "dlr-targeted":
        targets = target_classes(n_classes)
        attack = original("APGDAttack_targeted")(model, n_target_classes=targets, **common)
        text = _settings("pyautoattack.APGDAttack_targeted", n_target_classes=targets,
                         **_shown(common))
    else:
        attack = original("APGDAttack")(model, loss=loss, **common)
        text = _settings("pyautoattack.APGDAttack", loss=loss, **_shown(common))
    return ReferenceAttack(attack, lambda a, x, y: a.perturb(x, y), int(seed), device, text)


def make_fab_t(model: nn.Module, epsilon: float, *, norm: str, steps: int, restarts: int,
               seed: int, device, n_classes: int) -> ReferenceAttack:
    targets = target_classes(n_classes)
    common = dict(norm=TORCHATTACKS_NORM[norm], n_restarts=int(restarts), n_iter=int(steps),
                  eps=float(epsilon), seed=int(seed), device=device)
    attack = original("FABAttack_PT")(model, targeted=True, n_target_classes=targets, **common)
    text = _settings("pyautoattack.FABAttack_PT", targeted=True, n_target_classes=targets,
                     **_shown(common))
    return ReferenceAttack(attack, lambda a, x, y: a.perturb(x, y), int(seed), device, text)


def make_square(model: nn.Module, epsilon: float, *, norm: str, queries: int, restarts: int,
                seed: int, device) -> ReferenceAttack:
    common = dict(norm=TORCHATTACKS_NORM[norm], n_queries=int(queries), eps=float(epsilon),
                  p_init=.8, n_restarts=int(restarts), seed=int(seed), loss="margin",
                  resc_schedule=True, device=device)
    attack = original("SquareAttack")(model, **common)
    text = _settings("pyautoattack.SquareAttack", **_shown(common))
    return ReferenceAttack(attack, lambda a, x, y: a.perturb(x, y), int(seed), device, text)


def make_autoattack(model: nn.Module, epsilon: float, *, norm: str, version: str, steps: int,
                    seed: int, device, n_classes: int) -> ReferenceAttack:
    """The original `AutoAttack` with `version`'s settings, its gradient parts at `steps`."""
    adversary = original("AutoAttack")(model, norm=TORCHATTACKS_NORM[norm], eps=float(epsilon),
                              version=version, seed=int(seed), device=device)
    adversary.verbose = False
    for apgd in (adversary.apgd, adversary.apgd_targeted):
        set_apgd_steps(apgd, steps)
    adversary.fab.n_iter = int(steps)
    adversary.apgd_targeted.n_target_classes = min(adversary.apgd_targeted.n_target_classes,
                                                   n_classes - 1)
    adversary.fab.n_target_classes = min(adversary.fab.n_target_classes, n_classes - 1)
    text = _settings("pyautoattack.AutoAttack", norm=adversary.norm, eps=float(epsilon),
                     version=version, seed=int(seed), attacks=list(adversary.attacks_to_run),
                     steps=int(steps), n_target_classes=adversary.apgd_targeted.n_target_classes)
    return ReferenceAttack(adversary, _run_autoattack, int(seed), device, text)


def _run_autoattack(adversary, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=len(y))
    return x_adv


def set_apgd_steps(apgd, steps: int) -> None:
    """n_iter of an original APGD built with another, with the step-size checkpoints that its
    constructor derives from n_iter (setting n_iter alone would leave them at 100 steps')."""
    fresh = type(apgd)(apgd.model, n_iter=int(steps), eps=apgd.eps, norm=apgd.norm)
    for name in APGD_SCHEDULE:
        setattr(apgd, name, getattr(fresh, name))


def _shown(common: dict) -> dict:
    return {k: v for k, v in common.items() if k != "device"}


def describe(attack: ReferenceAttack) -> dict:
    return {"implementation": "reference", "reference": repr(attack)}


def _sweep(name: str, model, x, y, epsilons, batch_size, device, params: dict, seed, offset,
           progress, make: Callable[[float, int, Any], ReferenceAttack]) -> list[EpsilonResult]:
    check_norm(name, params["norm"], NORMS)
    device = x.device if device is None else device
    minimum = 4 if name == "autoattack" and params.get("version") != "rand" else \
        MIN_CLASSES.get(name, 2)
    n_classes = require_classes(f"{name} (reference)", output_classes(model, x, device), minimum)
    params = {"attack": name, **params} | ({} if name == "square" else {"n_classes": n_classes})
    return attack_sweep(model, x, y, epsilons, batch_size, device,
                        lambda eps: make(eps, n_classes, device), params=params, seed=seed,
                        offset=offset, progress=progress, describe=describe)


def apgd_ce_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                  batch_size: int | None = None, device: str | torch.device | None = None, *,
                  norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                  restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                  progress: bool = False) -> list[EpsilonResult]:
    params = {"norm": norm, "steps": int(steps), "restarts": int(restarts), "loss": "ce"}
    return _sweep("apgd-ce", model, x, y, epsilons, batch_size, device, params, seed, offset, progress,
                  lambda eps, n, dev: make_apgd(model, eps, loss="ce", norm=norm, steps=steps,
                                                restarts=restarts, seed=seed, device=dev,
                                                n_classes=n))


def apgd_t_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                 batch_size: int | None = None, device: str | torch.device | None = None, *,
                 norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                 restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                 progress: bool = False) -> list[EpsilonResult]:
    params = {"norm": norm, "steps": int(steps), "restarts": int(restarts)}
    return _sweep("apgd-t", model, x, y, epsilons, batch_size, device, params, seed, offset, progress,
                  lambda eps, n, dev: make_apgd(model, eps, loss="dlr-targeted", norm=norm,
                                                steps=steps, restarts=restarts, seed=seed,
                                                device=dev, n_classes=n))


def fab_t_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                batch_size: int | None = None, device: str | torch.device | None = None, *,
                norm: str = defaults.NORM, steps: int = defaults.PGD_STEPS,
                restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                progress: bool = False) -> list[EpsilonResult]:
    params = {"norm": norm, "steps": int(steps), "restarts": int(restarts)}
    return _sweep("fab-t", model, x, y, epsilons, batch_size, device, params, seed, offset, progress,
                  lambda eps, n, dev: make_fab_t(model, eps, norm=norm, steps=steps,
                                                 restarts=restarts, seed=seed, device=dev,
                                                 n_classes=n))


def square_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float],
                 batch_size: int | None = None, device: str | torch.device | None = None, *,
                 norm: str = defaults.NORM, queries: int = defaults.SQUARE_QUERIES,
                 restarts: int = defaults.RESTARTS, seed: int = 0, offset: int = 0,
                 progress: bool = False) -> list[EpsilonResult]:
    params = {"norm": norm, "queries": int(queries), "restarts": int(restarts)}
    return _sweep("square", model, x, y, epsilons, batch_size, device, params, seed, offset, progress,
                  lambda eps, n, dev: make_square(model, eps, norm=norm, queries=queries,
                                                  restarts=restarts, seed=seed, device=dev))


def autoattack_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     epsilons: Sequence[float], batch_size: int | None = None,
                     device: str | torch.device | None = None, *, norm: str = defaults.NORM,
                     version: str = defaults.AUTOATTACK_VERSION,
                     steps: int = defaults.PGD_STEPS, seed: int = 0, offset: int = 0,
                     progress: bool = False) -> list[EpsilonResult]:
    params = {"norm": norm, "version": version, "steps": int(steps)}
    return _sweep("autoattack", model, x, y, epsilons, batch_size, device, params, seed, offset,
                  progress, lambda eps, n, dev: make_autoattack(
                      model, eps, norm=norm, version=version, steps=steps, seed=seed,
                      device=dev, n_classes=n))
