"""Evaluation attacks: thin adapters over torchattacks, one ε-sweep function per attack.

Every sweep has the signature

    sweep(model, x, y, epsilons, batch_size, device, *, seed=0, progress=False, **params)
        -> list[EpsilonResult]     # one per ε, in the order given

where `x` holds pixels in [0, 1] (models normalize inside, see bench.models.normalize) and
`params` are the attack's own settings (PGD: steps, alpha, random_start). Eval mode and
device placement are handled here, in `attack_mode`, and nowhere else.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from bench.registry import Registry

ATTACKS: Registry = Registry("attack")
ATTACKS.register("fgsm", "bench.attacks.fgsm:fgsm_sweep")
ATTACKS.register("pgd", "bench.attacks.pgd:pgd_sweep")


@dataclass(frozen=True)
class EpsilonResult:
    epsilon: float
    adv_pred: torch.Tensor  # int64 (N,) on the CPU: predictions on the adversarial inputs
    linf: torch.Tensor  # float (N,) on the CPU: L∞ norm of x_adv - x per sample
    zero_grad_frac: float  # exactly-zero entries of the loss' input gradient at the clean x
    attack_repr: str  # repr() of the torchattacks object for this (model, ε)
    eval_mode: bool  # every module was in eval mode when the attack started


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


def is_eval_mode(model: nn.Module) -> bool:
    return not any(m.training for m in model.modules())


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
    images = x.clone().detach()
    images.requires_grad = True
    cost = nn.CrossEntropyLoss()(model(images), y)
    return torch.autograd.grad(cost, images, retain_graph=False, create_graph=False)[0]


def linf_per_sample(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_adv - x).abs().flatten(1).amax(1)


def zero_fraction(grad: torch.Tensor) -> tuple[int, int]:
    """(exactly-zero entries, all entries): many zeros hint at gradient masking."""
    return int((grad == 0).sum()), grad.numel()

