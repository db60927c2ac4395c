"""Bring a batch of images to the size and channel count a suite asks for."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

# ITU-R 601-2 luma, the weights PIL uses for mode "L", so RGB -> grayscale agrees with imagefolder.
_LUMA = (0.299, 0.587, 0.114)


def conform(
    x: torch.Tensor, image_size: Sequence[int] | None, channels: int | None
) -> torch.Tensor:
    """Resize float N×C×H×W images in [0, 1] to `image_size` ([H, W]) and convert to `channels`.

    `None` keeps the native size or channel count. Resizing is bilinear, antialiased when
    shrinking, and the result is clamped to [0, 1]. Channels: 1 -> 3 repeats the gray plane,
    3 -> 1 takes the luma.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 input channels, got shape {tuple(x.shape)}")
    computed = False  # only new tensors are clamped in place; the caller's input is never written
    if channels == 1 and x.shape[1] == 3:  # before resizing: a third of the work
        luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * luma).sum(dim=1, keepdim=True)
        computed = True
    if image_size is not None:
        h, w = (int(v) for v in image_size)
        if (h, w) != tuple(x.shape[2:]):
            shrinking = h < x.shape[2] or w < x.shape[3]
            x = F.interpolate(
                x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrinking
            )
            computed = True
    if channels == 3 and x.shape[1] == 1:  # after resizing: repeat the smaller image
        x = x.repeat(1, 3, 1, 1)
    if computed:
        x = x.clamp_(0.0, 1.0)
    return x.contiguous()
