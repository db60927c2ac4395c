"""DCGAN (Radford et al., 2016): BatchNorm, non-saturating BCE loss, Adam(2e-4, β=(0.5, 0.999))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.gans.base import GAN, Recipe
from bench.gans.layers import build_discriminator, build_generator, dcgan_init


class DCGAN(GAN):
    name = "dcgan"
    paper = Recipe(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999))

    def build_generator(self) -> nn.Module:
        g = build_generator(self.channels, self.image_size, self.z_dim)
        dcgan_init(g)
        return g

    def build_discriminator(self) -> nn.Module:
        d = build_discriminator(self.channels, self.image_size, norm="batch")
        dcgan_init(d)
        return d

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # Real and fake go through separately so BatchNorm sees one kind per batch, as in DCGAN.
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        return (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        d_fake = self.discriminator(fake)
        return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))  # non-saturating
