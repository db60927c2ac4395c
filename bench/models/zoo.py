"""Architectures of public checkpoints, as zero-argument factories for a suite's
`factory = "bench.models.zoo:NAME"`, so their state_dicts load without your own code.

- `fgsm_tutorial_net`: the net of PyTorch's FGSM tutorial since 2023 (pytorch/examples'
  MNIST net: two 3×3 convolutions, 32 and 64 channels, max pool, 9216 → 128 → 10), for its
  `lenet_mnist_model.pth`. It returns log-probabilities, which attacks handle correctly
  (cross-entropy on log-softmax equals cross-entropy on the logits). Its inputs are
  normalised with mean 0.1307 and std 0.3081: give `normalize` in the suite.
- `fgsm_tutorial_lenet_classic`: the tutorial's earlier LeNet (5×5 convolutions with 10 and
  20 channels, 320 → 50 → 10, log-probabilities, no normalisation), for the older checkpoint.
- `cifar10_resnet18`: bench's ResNet-18 with the CIFAR stem, 10 classes, no normalisation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from bench.models.resnet import build_resnet18


class FGSMTutorialNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
        return F.log_softmax(self.fc2(self.dropout2(x)), dim=1)


class FGSMTutorialLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def fgsm_tutorial_net() -> nn.Module:
    return FGSMTutorialNet()


def fgsm_tutorial_lenet_classic() -> nn.Module:
    return FGSMTutorialLeNet()


def cifar10_resnet18() -> nn.Module:
    return build_resnet18(3, 10, (32, 32))
