"""The DCGAN-style layer stacks every reference GAN is built from.

WGAN-GP and SNGAN reuse them with a different discriminator normalisation, as in their papers'
"standard CNN" experiments. The stacks are sized from the image: 8×8 digits upsample 4→8,
28×28 MNIST 7→14→28, 32×32 CIFAR 4→8→16→32.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

SMALL_IMAGE = 16  # images up to this side get half the width: 8×8 digits need little capacity
MAX_LEVELS = 4  # up/downsampling stages at most (64×64 starts from 4×4)

Norm = Literal["batch", "none", "spectral"]


def levels(image_size: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """(number of ×2 stages, starting size): halve while both sides stay even and ≥ 4."""
    h, w = image_size
    k = 0
    while k < MAX_LEVELS and h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        h, w, k = h // 2, w // 2, k + 1
    return k, (h, w)


def base_width(image_size: tuple[int, int]) -> int:
    """Channels at full resolution (doubled at each halving): 32 for small images, else 64."""
    return 32 if max(image_size) <= SMALL_IMAGE else 64


def build_generator(channels: int, image_size: tuple[int, int], z_dim: int) -> nn.Sequential:
    """z -> linear to the start size -> k × (ConvTranspose ×2, 3×3 conv) -> 3×3 conv -> tanh.

    BatchNorm and ReLU follow every layer but the last (DCGAN).
    """
    k, (h0, w0) = levels(image_size)
    width = base_width(image_size) * 2**k
    layers: list[nn.Module] = [
        nn.Linear(z_dim, width * h0 * w0, bias=False),
        nn.Unflatten(1, (width, h0, w0)),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    for _ in range(k):
        layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(width // 2), nn.ReLU(inplace=True),
                   nn.Conv2d(width // 2, width // 2, 3, 1, 1, bias=False),
                   nn.BatchNorm2d(width // 2), nn.ReLU(inplace=True)]
        width //= 2
    layers += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
    return nn.Sequential(*layers)


def build_discriminator(channels: int, image_size: tuple[int, int], norm: Norm,
                        slope: float = 0.2) -> nn.Sequential:
    """A discriminator in the style of the SNGAN paper's "standard CNN", sized to the image.

    3×3 conv, then per stage a 3×3 conv and a 4×4 stride-2 conv that doubles the width
    (each followed by `norm` and LeakyReLU), then a linear layer -> one logit per image.
    """
    k, (h0, w0) = levels(image_size)
    sn = nn.utils.parametrizations.spectral_norm if norm == "spectral" else (lambda m: m)

    def block(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
        # No bias before BatchNorm: its shift makes the bias redundant.
        out = [sn(nn.Conv2d(c_in, c_out, kernel, stride, 1, bias=norm != "batch"))]
        if norm == "batch":
            out.append(nn.BatchNorm2d(c_out))
        return out + [nn.LeakyReLU(slope)]

    width = base_width(image_size)
    # The first layer sees raw pixels: never normalised (DCGAN).
    layers: list[nn.Module] = [sn(nn.Conv2d(channels, width, 3, 1, 1)), nn.LeakyReLU(slope)]
    for _ in range(k):
        layers += block(width, width, 3, 1) + block(width, width * 2, 4, 2)
        width *= 2
    layers += [nn.Flatten(), sn(nn.Linear(width * h0 * w0, 1))]
    return nn.Sequential(*layers)


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's init: weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
