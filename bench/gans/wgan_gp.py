"""WGAN-GP (Gulrajani et al., 2017): Wasserstein critic with a gradient penalty.

The paper's Algorithm 1: λ = 10, five critic updates per generator update, Adam(1e-4,
β=(0.0, 0.9)). The critic has no BatchNorm: the penalty is per sample, and batch statistics
would couple the samples.

Mixed precision: the penalty is computed outside autocast, in float32 and from unscaled
gradients (the recipe of PyTorch's AMP examples, "gradient penalty"), so a loss scale that
GradScaler is probing can never turn the penalty into inf. If the scaled backward of the
whole loss still overflows, GradScaler skips that update (see bench.gans.train).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.gans.base import GAN, Recipe
from bench.gans.layers import build_discriminator
from bench.transfer import to_device

GP_WEIGHT = 10.0


class WGANGP(GAN):
    name = "wgan-gp"
    paper = Recipe(lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5)
    step_cost = 1.4  # the penalty's double backward (gan-digits: 72 vs 51 ms per step)

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.channels, self.image_size, norm="none")

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        wasserstein = self.discriminator(fake).mean() - self.discriminator(real).mean()
        return wasserstein + GP_WEIGHT * self.gradient_penalty(real, fake, gen)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor,
                         gen: torch.Generator) -> torch.Tensor:
        """E[(‖∇D(x̂)‖₂ − 1)²] on random points x̂ between real and fake samples.

        A separate critic pass, in float32 outside autocast: the double backward then covers
        only this batch, and the gradients it penalises carry no loss scale.
        """
        alpha = to_device(torch.rand(real.shape[0], 1, 1, 1, generator=gen), real.device)
        with self.full_precision():
            mixed = (alpha * real.float() + (1 - alpha) * fake.float()).requires_grad_(True)
            (grad,) = torch.autograd.grad(self.discriminator(mixed).sum(), mixed, create_graph=True)
            return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -self.discriminator(fake).mean()
