"""MNIST, Fashion-MNIST, CIFAR-10 and SVHN, read by torchvision from the official file formats.

Each split is converted to one tensor straight from the dataset's `.data` array, without
going through PIL image by image.

torchvision compares every CIFAR-10 and SVHN file with the md5 of the official release, so a
re-packed copy or a tiny test fixture in the same format would be reported as "not found".
The `_CIFAR10Files` and `_SVHNFiles` subclasses below set those md5s to None, which makes
torchvision's own `check_integrity` test that the files exist; everything else, including the
parsing, is torchvision's code. A damaged file still fails loudly when it is parsed, and
downloads (`download = true`) are still checked against the official md5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torchvision import datasets
from torchvision.datasets.utils import download_url

from bench.data import ImageData
from bench.data.files import missing_files, not_found_message
from bench.data.transforms import conform
from bench.errors import DatasetNotFound
from bench.suite.cell_configs import DatasetSpec

NUM_CLASSES = 10


class _CIFAR10Files(datasets.CIFAR10):
    """torchvision's CIFAR10 with the per-file md5 check reduced to "the file exists"."""

    train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
    meta = {**datasets.CIFAR10.meta, "md5": None}
    # download() still passes the official tgz_md5 to download_and_extract_archive.


class _SVHNFiles(datasets.SVHN):
    """torchvision's SVHN with the per-file md5 check reduced to "the file exists"."""

    split_list = {k: [url, name, None] for k, (url, name, _) in datasets.SVHN.split_list.items()}

    def download(self) -> None:
        if not self._check_integrity():  # an existing file is used as it is, like the loader
            url, name, md5 = datasets.SVHN.split_list[self.split]
            download_url(url, self.root, name, md5)


def _open(cfg: DatasetSpec, kind: str, split: str, make: Callable[[str, bool], object]):
    """Build the torchvision dataset, turning missing files into one clear DatasetNotFound."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(cfg.root).expanduser()  # required by the schema for these kinds
    download = cfg.download
    if not download:
        missing = missing_files(root, kind, split)
        if missing:
            raise DatasetNotFound(not_found_message(cfg, kind, root, missing))
        return make(str(root), False)
    try:
        return make(str(root), True)
    except (RuntimeError, OSError) as exc:  # e.g. no network: report it, unless files did arrive
        missing = missing_files(root, kind, split)
        if not missing:
            raise
        why = "; download failed: " + " ".join(str(exc).split())
        raise DatasetNotFound(not_found_message(cfg, kind, root, missing, why)) from exc


def _image_data(cfg: DatasetSpec, x_uint8: torch.Tensor, y: torch.Tensor) -> ImageData:
    """uint8 N×C×H×W -> float [0, 1], then the suite's size and channels."""
    x = conform(x_uint8.float().div_(255.0), cfg.image_size, cfg.channels)
    return ImageData(x, y.to(torch.int64), NUM_CLASSES, cfg.name)


def _load_mnist_like(cfg: dict, split: str, kind: str, cls: type) -> ImageData:
    ds = _open(cfg, kind, split, lambda root, dl: cls(root, train=split == "train", download=dl))
    return _image_data(cfg, ds.data.unsqueeze(1), ds.targets)  # data: uint8 N×28×28


def load_mnist(cfg: DatasetSpec, split: str) -> ImageData:
    return _load_mnist_like(cfg, split, "mnist", datasets.MNIST)


def load_fashion_mnist(cfg: DatasetSpec, split: str) -> ImageData:
    return _load_mnist_like(cfg, split, "fashion-mnist", datasets.FashionMNIST)


def load_cifar10(cfg: DatasetSpec, split: str) -> ImageData:
    def make(root: str, download: bool) -> _CIFAR10Files:
        return _CIFAR10Files(root, train=split == "train", download=download)

    ds = _open(cfg, "cifar10", split, make)
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # data: N×H×W×C
    return _image_data(cfg, x, torch.as_tensor(ds.targets))


def load_svhn(cfg: DatasetSpec, split: str) -> ImageData:
    ds = _open(cfg, "svhn", split, lambda root, dl: _SVHNFiles(root, split=split, download=dl))
    # data: uint8 N×C×H×W; labels: int64 with the raw label 10 already mapped to digit 0.
    x = torch.from_numpy(np.ascontiguousarray(ds.data))
    return _image_data(cfg, x, torch.from_numpy(np.asarray(ds.labels)))
