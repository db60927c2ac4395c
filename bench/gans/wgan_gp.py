"""WGAN-GP (Gulrajani et al., 2017): Wasserstein critic with a gradient penalty.

λ = 10, five critic updates per generator update, Adam(1e-4, β=(0.5, 0.9)) as in the paper's
DCGAN-architecture runs. The critic has no BatchNorm: the penalty is per sample, and batch
statistics would couple the samples.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.gans.dcgan import build_discriminator
from bench.gans.train import GAN

GP_WEIGHT = 10.0


class WGANGP(GAN):
    name = "wgan-gp"
    lr = 1e-4
    betas = (0.5, 0.9)
    n_critic = 5

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.channels, self.image_size, norm="none")

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        wasserstein = self.discriminator(fake).mean() - self.discriminator(real).mean()
        return wasserstein + GP_WEIGHT * self.gradient_penalty(real, fake, gen)

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor,
                         gen: torch.Generator) -> torch.Tensor:
        """E[(‖∇D(x̂)‖₂ − 1)²] on random points x̂ between real and fake samples.

        A separate critic pass: the double backward then covers only this batch.
        """
        alpha = torch.rand(real.shape[0], 1, 1, 1, generator=gen).to(real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        grad = self.input_gradients(self.discriminator(mixed), mixed)
        return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -self.discriminator(fake).mean()
