"""ResNet-18 with the CIFAR-style stem: a 3×3 stride-1 first convolution and no max pool.

torchvision's ImageNet stem (7×7 stride 2 + max pool) shrinks a 32×32 image to 8×8 before
the first block; the CIFAR stem keeps the resolution, as in the adversarial-training
literature (Madry et al., Wong et al.). The global average pool is already adaptive.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet18


def build_resnet18(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    del image_size  # the adaptive average pool handles every size down to 1×1 after layer4
    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model
