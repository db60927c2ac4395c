"""SNGAN (Miyato et al., 2018): spectral normalisation in the discriminator, hinge loss.

Every conv and linear layer of D is wrapped in torch.nn.utils.parametrizations.spectral_norm
(one power iteration per forward); LeakyReLU slope 0.1 as in the paper's standard CNN. The
paper's recipe for the hinge loss: Adam(2e-4, β=(0.0, 0.9)), five D updates per G update.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.gans.base import GAN, Recipe
from bench.gans.layers import build_discriminator


class SNGAN(GAN):
    name = "sngan"
    paper = Recipe(lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), n_critic=5)
    step_cost = 1.1  # the power iteration of spectral norm (gan-digits: 56 vs 51 ms per step)

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.channels, self.image_size, norm="spectral", slope=0.1)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return F.relu(1 - self.discriminator(real)).mean() + F.relu(1 + self.discriminator(fake)).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -self.discriminator(fake).mean()
