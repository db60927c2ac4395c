"""Adversarial examples for adversarial *training* (the evaluation attacks live in bench.attacks).

Both generators work in pixel space: the result stays in the L∞ ε-ball around `x` and in
[0, 1]. They take an explicit `torch.Generator` for the random start, so training runs are
reproducible without touching the global RNG, and they leave the model's train/eval mode
alone: the caller decides (see bench.training.loop).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench import defaults


def uniform_start(x: torch.Tensor, epsilon: float,
                  generator: torch.Generator | None) -> torch.Tensor:
    """A uniformly random point of the ε-ball around `x`, clamped to [0, 1]."""
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + (2 * noise - 1) * epsilon).clamp(0.0, 1.0)


def _input_grad_sign(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x_adv = x_adv.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    # autograd.grad, not backward(): the parameters' .grad stay untouched for the optimizer step.
    (grad,) = torch.autograd.grad(loss, x_adv)
    return grad.sign()


def _project(x_adv: torch.Tensor, x: torch.Tensor, epsilon: float) -> torch.Tensor:
    delta = (x_adv - x).clamp(-epsilon, epsilon)
    return (x + delta).clamp(0.0, 1.0).detach()


def fgsm_rs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Wong et al. 2020, "Fast is better than free": random start, one signed step of
    size alpha (default 1.25·ε, their recommended value), projection and clamp."""
    alpha = defaults.FGSM_RS_ALPHA_FACTOR * epsilon if alpha is None else alpha
    x = x.detach()
    x_adv = uniform_start(x, epsilon, generator)
    x_adv = x_adv + alpha * _input_grad_sign(model, x_adv, y)
    return _project(x_adv, x, epsilon)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    steps: int,
    alpha: float,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Madry et al. 2018: (random start,) `steps` signed steps of size alpha, each followed
    by projection and clamp. No default step: training and evaluation use different rules
    (bench.defaults.pgd_train_alpha, pgd_eval_alpha)."""
    x = x.detach()
    x_adv = uniform_start(x, epsilon, generator) if random_start else x.clone()
    for _ in range(steps):
        x_adv = _project(x_adv + alpha * _input_grad_sign(model, x_adv, y), x, epsilon)
    return x_adv
