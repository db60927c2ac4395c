"""How many examples a dataset split holds, read from file headers and folder listings.

The plan needs this to cut a robustness cell into sample shards before anything runs, and
`bench validate` plans without loading data: so no torch and no image is read here. Each
count is the length the loader (bench.data.DATASETS) returns, `limit_<split>` applied;
tests/test_shards.py holds the two equal for every kind, on files in the real formats.
"""

from __future__ import annotations

import math
import pickle
import struct
from pathlib import Path

from bench.data.files import DIGITS_CLASS_COUNTS, class_folders, count_images
from bench.suite.cell_configs import DatasetSpec


def count_examples(cfg: DatasetSpec, split: str) -> int:
    """The number of examples `bench.data.load_dataset(cfg, split)` returns."""
    n = _COUNTERS[cfg.kind](cfg, split)
    limit = getattr(cfg, f"limit_{split}")
    return n if limit is None else min(n, limit)


def _stratified(total: int, split: str, test_fraction: float) -> int:
    """scikit-learn's train_test_split: ceil(fraction · n) test examples, the rest train."""
    n_test = math.ceil(test_fraction * total)
    return n_test if split == "test" else total - n_test


def _digits(cfg: DatasetSpec, split: str) -> int:
    return _stratified(sum(DIGITS_CLASS_COUNTS), split, cfg.test_fraction)


def _idx_count(path: Path) -> int:
    """The item count in an IDX file's header (big-endian, after the 4-byte magic)."""
    with open(path, "rb") as fh:
        return struct.unpack(">I", fh.read(8)[4:8])[0]


def _mnist_like(folder: str):
    def count(cfg: DatasetSpec, split: str) -> int:
        prefix = "train" if split == "train" else "t10k"
        return _idx_count(Path(cfg.root).expanduser() / folder / "raw" /
                          f"{prefix}-labels-idx1-ubyte")
    return count


def _cifar10(cfg: DatasetSpec, split: str) -> int:
    folder = Path(cfg.root).expanduser() / "cifar-10-batches-py"
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    total = 0
    for name in names:  # the python-pickle batches hold numpy arrays: unpickling needs numpy
        with open(folder / name, "rb") as fh:
            total += len(pickle.load(fh, encoding="latin1")["labels"])
    return total


def _svhn(cfg: DatasetSpec, split: str) -> int:
    from scipy.io import whosmat  # shapes from the header, without reading the images

    shapes = dict((name, shape) for name, shape, _ in
                  whosmat(str(Path(cfg.root).expanduser() / f"{split}_32x32.mat")))
    return int(shapes["X"][-1])  # X is 32 × 32 × 3 × N


def _imagefolder(cfg: DatasetSpec, split: str) -> int:
    root = Path(cfg.root).expanduser()
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = class_folders(cfg, root / "train")
        return sum(count_images(root / split / c) for c in classes if (root / split / c).is_dir())
    total = sum(count_images(root / c) for c in class_folders(cfg, root))
    return _stratified(total, split, cfg.test_fraction)


_COUNTERS = {
    "digits": _digits,
    "mnist": _mnist_like("MNIST"),
    "fashion-mnist": _mnist_like("FashionMNIST"),
    "cifar10": _cifar10,
    "svhn": _svhn,
    "imagefolder": _imagefolder,
}
