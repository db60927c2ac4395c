"""An exponential moving average of the generator weights (Yazıcı et al., 2019, "The Unusual
Effectiveness of Averaging in GAN Training"; used by ProGAN, StyleGAN and BigGAN).

Averaging the generator over its last few hundred updates smooths out the oscillation that
adversarial training leaves in the weights; samples and FID come from the average, training
goes on with the raw weights. The decay warms up as in TensorFlow's ExponentialMovingAverage
with `num_updates`, min(decay, (1 + t) / (10 + t)), so the average does not drag the untrained
initial weights along for thousands of steps. BatchNorm running statistics are averaged too
(like torch.optim.swa_utils.AveragedModel with use_buffers=True); counters are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class GeneratorEMA:
    def __init__(self, generator: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.model = copy.deepcopy(generator).requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        self.updates += 1
        weight = 1 - self.current_decay()
        for avg, new in zip(self.model.parameters(), generator.parameters()):
            avg.lerp_(new, weight)
        for avg, new in zip(self.model.buffers(), generator.buffers()):
            if avg.is_floating_point():
                avg.lerp_(new, weight)
            else:
                avg.copy_(new)  # e.g. BatchNorm's num_batches_tracked

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
