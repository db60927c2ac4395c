"""Models built to trip the evaluation sanity checks (bench.checks), each a small wrapper
around a trained digits classifier: the failure modes Carlini et al. (2019) list."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.data import load_dataset
from tests.helpers.configs import DIGITS


class DropoutAlwaysOn(nn.Module):
    """An MLP whose hidden layer calls F.dropout(training=True): eval() does not turn it off."""

    def __init__(self, mlp: nn.Sequential, p: float = 0.5):
        super().__init__()
        self.mlp, self.p = mlp, p

    def forward(self, x):
        flatten, hidden, relu, out = self.mlp
        return out(F.dropout(relu(hidden(flatten(x))), self.p, training=True))


class NoisyInput(nn.Module):
    """A randomized defense: Gaussian noise on the input at every forward pass."""

    def __init__(self, model: nn.Module, sigma: float = 0.3):
        super().__init__()
        self.model, self.sigma = model, sigma

    def forward(self, x):
        return self.model(x + self.sigma * torch.randn_like(x))


class ScaledLogits(nn.Module):
    """Logits times a large factor: where the margin exceeds ~104 the float32 softmax is
    exactly one-hot and the cross-entropy input gradient exactly zero (gradient masking)."""

    def __init__(self, model: nn.Module, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


class IgnoresInput(nn.Module):
    """Fixed logits whatever the input (the input stays in the graph with a zero gradient)."""

    def __init__(self, num_classes: int = 10, favourite: int = 3):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_classes))
        with torch.no_grad():
            self.logits[favourite] = 5.0

    def forward(self, x):
        return self.logits.expand(len(x), -1) + 0.0 * x.flatten(1).sum(1, keepdim=True)


class QuantisedInput(nn.Module):
    """Rounds every pixel to 0 or 1 first: torch.round's gradient is zero everywhere."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x))


def train_digits_bn_mlp(hidden: int = 32, steps: int = 300, seed: int = 0) -> nn.Module:
    """An MLP with BatchNorm1d(track_running_stats=False): it normalises with the statistics
    of whatever batch it is in, also in eval mode."""
    train = load_dataset(DIGITS, "train")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden),
                              nn.BatchNorm1d(hidden, track_running_stats=False), nn.ReLU(),
                              nn.Linear(hidden, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(model(train.x), train.y).backward()
            opt.step()
    return model.eval()


def untrained_cnn_without_running_stats(seed: int = 0) -> nn.Module:
    """A small CNN whose BatchNorm2d keeps no running statistics (a lone input still works:
    BatchNorm2d normalises over its pixels)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1),
                             nn.BatchNorm2d(8, track_running_stats=False), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10)).eval()
