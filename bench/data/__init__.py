"""Datasets as in-memory image tensors in [0, 1].

Every loader is registered by `kind` and has the signature
`loader(cfg: DatasetSpec, split: str) -> ImageData`, where `cfg` is the resolved
`[datasets.NAME]` table (bench.suite.cell_configs.DatasetSpec) and split is
"train" or "test".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.registry import Registry
from bench.suite.cell_configs import DatasetSpec

if TYPE_CHECKING:  # torch is imported where tensors are made, so bench.data.files stays light
    import torch


@dataclass(frozen=True)
class ImageData:
    x: torch.Tensor  # float32, N x C x H x W, values in [0, 1]
    y: torch.Tensor  # int64, N
    num_classes: int
    name: str
    # int64, N: each example's index in the split as its loader reads it (torchvision's
    # dataset index, the position in the digits or image-folder split), kept through every
    # subset (`limit_test`, a robustness `limit`, a sample shard). None: 0..N-1.
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def indices(self) -> torch.Tensor:
        import torch

        return torch.arange(len(self.y)) if self.index is None else self.index

    @property
    def channels(self) -> int:
        return self.x.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.x.shape[2], self.x.shape[3])

    def take(self, idx: torch.Tensor) -> "ImageData":
        return ImageData(self.x[idx], self.y[idx], self.num_classes, self.name, self.indices[idx])


DATASETS: Registry = Registry("dataset kind")
DATASETS.register("digits", "bench.data.digits:load_digits_data")
DATASETS.register("mnist", "bench.data.torchvision_sets:load_mnist")
DATASETS.register("fashion-mnist", "bench.data.torchvision_sets:load_fashion_mnist")
DATASETS.register("cifar10", "bench.data.torchvision_sets:load_cifar10")
DATASETS.register("svhn", "bench.data.torchvision_sets:load_svhn")
DATASETS.register("imagefolder", "bench.data.imagefolder:load_imagefolder")


def load_dataset(cfg: DatasetSpec, split: str) -> ImageData:
    """Load `split` of the dataset described by `cfg`, then apply `limit_<split>` if set."""
    data = DATASETS.get(cfg.kind)(cfg, split)
    return seeded_subset(data, getattr(cfg, f"limit_{split}"), cfg.seed)


def seeded_subset(data: ImageData, limit: int | None, seed: int) -> ImageData:
    """A seeded random subset of `limit` examples, in their original order (files are often
    sorted by class, so a prefix would not do); all of `data` when it has no more."""
    if limit is None or limit >= len(data):
        return data
    return data.take(subset_indices(len(data), limit, seed))


def subset_indices(n: int, limit: int | None, seed: int) -> torch.Tensor:
    """The indices of the examples `seeded_subset` keeps of `n`, ascending."""
    import torch

    if limit is None or limit >= n:
        return torch.arange(n)
    return seeded_indices(n, limit, seed)


def seeded_indices(n: int, k: int, seed: int) -> torch.Tensor:
    """`k` of range(n), drawn with `seed`, in ascending order."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values
