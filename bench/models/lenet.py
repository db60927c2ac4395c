"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for any input size.

The classic net expects 32×32 inputs. Here both convolutions are padded ("same") and the
second pool is an adaptive max pool to 5×5, so the 16·5·5 → 120 → 84 → classes head is the
original one for every input size, 8×8 digits included.
"""

from __future__ import annotations

from torch import nn


def build_lenet(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    h, w = image_size
    # Only pool when there is something left to pool: 8×8 digits would vanish after two 2×2 pools.
    pool = nn.MaxPool2d(2) if min(h, w) >= 16 else nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        pool,
        nn.Conv2d(6, 16, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d((5, 5)),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )
