"""Tiny classifiers trained in a second or two, for tests that need a model with real
decision boundaries (attacks must flip some predictions and fail on others)."""

from __future__ import annotations

import torch
from torch import nn

from bench.data import load_dataset
from tests.helpers.configs import DIGITS


def train_digits_mlp(hidden: int = 32, steps: int = 300, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(model in eval mode, x_test, y_test): a 64-hidden-unit MLP on the 8×8 digits, trained
    full-batch with Adam. About 95% clean accuracy; ε around 0.1 breaks roughly half."""
    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(train.x), train.y).backward()
            opt.step()
    return model.eval(), test.x, test.y
