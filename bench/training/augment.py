"""Training-time augmentation: random crops and horizontal flips, per sample, seeded.

The standard CIFAR-10 augmentation (torchvision's `RandomCrop(32, padding=4)` and
`RandomHorizontalFlip()`), done on the batch tensor on its device. Every draw comes from an
explicit `torch.Generator`, so a training run is a function of its seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(x: torch.Tensor, crop_padding: int, flip: bool,
            generator: torch.Generator) -> torch.Tensor:
    """`x` (N, C, H, W) with each sample randomly cropped and/or flipped (a new tensor)."""
    if crop_padding > 0:
        x = random_crop(x, crop_padding, generator)
    if flip:
        x = random_flip(x, generator)
    return x


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `padding` on every side, then take an H×W window at a uniformly random
    offset per sample (torchvision's RandomCrop with `padding` and fill 0)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # N,1,H,1
    cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # N,1,1,W
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each sample left-right with probability 1/2."""
    mirror = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(mirror[:, None, None, None], x.flip(-1), x)
