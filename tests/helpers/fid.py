"""A quickly trained domain extractor for the digits, saved as the extractor cell saves it,
and samplers for the FID tests."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.data import load_dataset
from bench.metrics import feature_extractor as fe
from bench.metrics import fidelity
from tests.helpers.configs import DIGITS


def quick_domain_extractor(folder: Path, epochs: int = 15) -> fidelity.Extractor:
    """bench's DomainNet trained `epochs` epochs on the digits (the cell's recipe runs ~70):
    FIDs under it are stable and far apart for real, generated and noise images."""
    train, test = load_dataset(DIGITS, "train"), load_dataset(DIGITS, "test")
    net = fe.train_extractor(train.x, train.y, 10, epochs=epochs, lr=1e-3, batch_size=64, seed=0)
    payload = fe.weights_payload(net, 1, 10, fe.accuracy(net, test.x, test.y))
    path = Path(folder) / "weights.pt"
    torch.save(payload, path)
    return fidelity.domain_extractor(fe.extractor_name(payload["hash"]), payload["hash"],
                                     str(path))


class TensorSampler:
    """sampler(n): the next n images of `images` (float or uint8), as a generator would
    hand out batches; counts its calls."""

    def __init__(self, images: torch.Tensor):
        self.images, self.at, self.calls = images, 0, []

    def __call__(self, n: int) -> torch.Tensor:
        self.calls.append(n)
        out = self.images[self.at:self.at + n]
        self.at += n
        return out
