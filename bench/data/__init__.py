"""Datasets as in-memory image tensors in [0, 1].

Every loader is registered by `kind` and has the signature
`loader(cfg: dict, split: str) -> ImageData`, where `cfg` is the resolved
`[datasets.NAME]` table (see `bench.suite.schema.DatasetConfig`) and split is
"train" or "test".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.registry import Registry


@dataclass(frozen=True)
class ImageData:
    x: torch.Tensor  # float32, N x C x H x W, values in [0, 1]
    y: torch.Tensor  # int64, N
    num_classes: int
    name: str

    def __len__(self) -> int:
        return len(self.y)

    @property
    def channels(self) -> int:
        return self.x.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.x.shape[2], self.x.shape[3])


DATASETS: Registry = Registry("dataset kind")
DATASETS.register("digits", "bench.data.digits:load_digits_data")
DATASETS.register("mnist", "bench.data.torchvision_sets:load_mnist")
DATASETS.register("fashion-mnist", "bench.data.torchvision_sets:load_fashion_mnist")
DATASETS.register("cifar10", "bench.data.torchvision_sets:load_cifar10")
DATASETS.register("svhn", "bench.data.torchvision_sets:load_svhn")
DATASETS.register("imagefolder", "bench.data.imagefolder:load_imagefolder")


def load_dataset(cfg: dict, split: str) -> ImageData:
    """Load `split` of the dataset described by `cfg`, then apply `limit_<split>` if set."""
    data = DATASETS.get(cfg["kind"])(cfg, split)
    limit = cfg.get(f"limit_{split}")
    if limit is not None and limit < len(data):
        # A seeded random subset: files are often sorted by class, so a prefix would not do.
        gen = torch.Generator().manual_seed(int(cfg.get("seed", 0)))
        keep = torch.randperm(len(data), generator=gen)[:limit].sort().values
        data = ImageData(data.x[keep], data.y[keep], data.num_classes, data.name)
    return data
