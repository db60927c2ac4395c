"""SNGAN (Miyato et al., 2018): spectral normalisation in the discriminator, hinge loss.

Every conv and linear layer of D is wrapped in torch.nn.utils.parametrizations.spectral_norm
(one power iteration per forward); LeakyReLU slope 0.1 and Adam(2e-4, β=(0.5, 0.999)) with one
D update per G update, the paper's standard-CNN setting.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.gans.dcgan import build_discriminator
from bench.gans.train import GAN


class SNGAN(GAN):
    name = "sngan"
    lr = 2e-4
    betas = (0.5, 0.999)

    def build_discriminator(self) -> nn.Module:
        return build_discriminator(self.channels, self.image_size, norm="spectral", slope=0.1)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return F.relu(1 - self.discriminator(real)).mean() + F.relu(1 + self.discriminator(fake)).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -self.discriminator(fake).mean()
