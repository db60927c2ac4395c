"""The real architectures the attack benchmarks run on, besides bench's own (bench.models).

`TutorialLeNet` is the network of the PyTorch FGSM tutorial
(pytorch.org/tutorials/beginner/fgsm_tutorial.html), written out as it is there: two 5×5
convolutions without padding on 28×28 inputs, Dropout2d, a 320→50→10 head with dropout, and
log_softmax on the output. Attacks run it in eval mode, so its dropout does nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TutorialLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)
