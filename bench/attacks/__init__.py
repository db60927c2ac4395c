"""Evaluation attacks: thin adapters over torchattacks, one ε-sweep function per attack.

Every sweep has the signature

    sweep(model, x, y, epsilons, batch_size, device, *, seed=0, offset=0, progress=False,
          **params) -> list[EpsilonResult]     # one per ε, in the order given

where `x` holds pixels in [0, 1] (models normalize inside, see bench.models.normalize) and
`params` are the attack's own settings: the suite keys `bench.suite.attack_options.ATTACK_KEYS`
lists for it (every sweep takes `norm`; PGD also steps, alpha, random_start, restarts, loss).
ε is in the units of `norm`: pixel units for L∞, the L2 norm of the perturbation for L2.
`offset` is the position of x[0] among the evaluated examples (a sample shard starts there):
random draws are seeded per batch from `seed` and that position (bench.attacks.sweep).
Eval mode and device placement are handled here, in `attack_mode`, and nowhere else.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from bench.registry import Registry

ATTACKS: Registry = Registry("attack")
ATTACKS.register("fgsm", "bench.attacks.fgsm:fgsm_sweep")
ATTACKS.register("pgd", "bench.attacks.pgd:pgd_sweep")
ATTACKS.register("apgd-ce", "bench.attacks.apgd:apgd_ce_sweep")
ATTACKS.register("apgd-dlr", "bench.attacks.apgd:apgd_dlr_sweep")
ATTACKS.register("apgd-t", "bench.attacks.apgd:apgd_t_sweep")
ATTACKS.register("fab", "bench.attacks.fab:fab_sweep")
ATTACKS.register("fab-t", "bench.attacks.fab:fab_t_sweep")
ATTACKS.register("square", "bench.attacks.square:square_sweep")
ATTACKS.register("autoattack", "bench.attacks.autoattack:autoattack_sweep")
# implementation = "reference": the original AutoAttack code (bench.attacks.reference), the
# same sweep signatures; importing pyautoattack waits until one is used (the reference extra).
REFERENCE_ATTACKS: Registry = Registry("reference attack")
REFERENCE_ATTACKS.register("apgd-ce", "bench.attacks.reference:apgd_ce_sweep")
REFERENCE_ATTACKS.register("apgd-t", "bench.attacks.reference:apgd_t_sweep")
REFERENCE_ATTACKS.register("fab-t", "bench.attacks.reference:fab_t_sweep")
REFERENCE_ATTACKS.register("square", "bench.attacks.reference:square_sweep")
REFERENCE_ATTACKS.register("autoattack", "bench.attacks.reference:autoattack_sweep")


def sweep_for(attack: str, implementation: str):
    """The sweep of `attack` in `implementation` ("torchattacks" or "reference")."""
    return (REFERENCE_ATTACKS if implementation == "reference" else ATTACKS).get(attack)

# bench's norm names (suite keys, table columns) -> torchattacks' `norm` argument.
TORCHATTACKS_NORM = {"linf": "Linf", "l2": "L2"}


@dataclass(frozen=True)
class EpsilonResult:
    epsilon: float
    adv_pred: torch.Tensor  # int64 (N,) on the CPU: predictions on the adversarial inputs
    linf: torch.Tensor  # float (N,) on the CPU: L∞ norm of x_adv - x per sample
    attack_repr: str  # repr() of the torchattacks object for this (model, ε)
    adv_correct: torch.Tensor  # bool (N,) on the CPU: adv_pred == y, per example
    l2: torch.Tensor  # float (N,) on the CPU: L2 norm of x_adv - x per sample
    norm: str = "linf"  # the threat model ε is measured in: "linf" | "l2"
    # Every setting the attack ran with, defaults resolved (JSON scalars): attack, norm, ε,
    # seed and the attack's own (steps, alpha, restarts, loss, version, n_classes, ...).
    params: Mapping[str, Any] = field(default_factory=dict)
    # int64 (N,) on the CPU: the clean predictions, when the sweep got them for free from a
    # forward it ran anyway (FGSM's gradient pass), exactly what `predict` gives; else None.
    clean_pred: torch.Tensor | None = None

    @property
    def distance(self) -> torch.Tensor:
        """Per-sample size of the perturbation in the threat model's norm."""
        return self.l2 if self.norm == "l2" else self.linf


@contextmanager
def attack_mode(model: nn.Module, device: str) -> Iterator[nn.Module]:
    """The model on `device`, every module in eval mode; each module's mode is restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.to(device).eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


Batch = tuple[torch.Tensor, torch.Tensor]


def iter_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, device: str,
                 progress: bool = False, desc: str = "") -> Iterator[Batch]:
    """(x, y) batches moved to `device`, with a tqdm bar when `progress`."""
    starts = range(0, len(y), batch_size)
    for start in tqdm(starts, desc=desc, leave=False, disable=not progress):
        yield x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)


def predict(model: nn.Module, x: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    """Predicted classes (int64, CPU) in eval mode."""
    out = []
    with attack_mode(model, device), torch.inference_mode():
        for xb in x.split(batch_size):
            out.append(model(xb.to(device)).argmax(1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d CrossEntropy(mean) / d x, computed exactly as torchattacks.FGSM does, so that
    its sign is bit-identical to the one FGSM steps along for the same batch."""
    return logits_and_input_gradient(model, x, y)[1]


def logits_and_input_gradient(model: nn.Module, x: torch.Tensor,
                              y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`input_gradient`, plus the (detached) logits of the forward it differentiated."""
    images = x.clone().detach()
    images.requires_grad = True
    logits = model(images)
    cost = nn.CrossEntropyLoss()(logits, y)
    grad = torch.autograd.grad(cost, images, retain_graph=False, create_graph=False)[0]
    return logits.detach(), grad


def linf_per_sample(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_adv - x).abs().flatten(1).amax(1)


def cat_or_empty(parts: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """torch.cat(parts), or an empty tensor of `dtype` when there are none (no images)."""
    return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)


def l2_per_sample(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_adv - x).flatten(1).norm(p=2, dim=1)


def output_classes(model: nn.Module, x: torch.Tensor, device: str | torch.device) -> int:
    """The width of the model's output: the class count targeted attacks iterate over."""
    with torch.inference_mode():
        return int(model(x[:1].to(device)).shape[1])


def check_norm(attack: str, norm: str, supported: tuple[str, ...]) -> str:
    if norm not in supported:
        raise ValueError(f"{attack}: norm {norm!r} is not supported (torchattacks implements "
                         f"{', '.join(supported)})")
    return norm
