"""Tiny datasets written in the real on-disk formats, so tests run the real loading code.

Every writer returns the directory to use as the dataset's `root`. Images are learnable:
each class has a bright square at its own place (and, for colour data, its own colour) on a
noisy dark background, so a tiny CNN reaches high accuracy in a few epochs. Labels are
balanced (class = position % 10, then shuffled) and everything is seeded.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

NUM_CLASSES = 10

# Per-class colour for 3-channel data, distinct enough to be learnable on its own.
_COLOURS = np.array(
    [
        [255, 60, 60], [60, 255, 60], [60, 60, 255], [255, 255, 60], [255, 60, 255],
        [60, 255, 255], [255, 160, 60], [160, 60, 255], [255, 255, 255], [160, 255, 160],
    ],
    dtype=np.float64,
)  # fmt: skip


def balanced_labels(n: int, rng: np.random.Generator, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """`n` labels with every class as equally often as possible, in random order."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.uint8)


def class_images(
    labels: np.ndarray, size: tuple[int, int], channels: int, rng: np.random.Generator
) -> np.ndarray:
    """uint8 N×H×W×C images: a class-placed bright square (±1 pixel jitter) on noise."""
    h, w = size
    n = len(labels)
    images = rng.uniform(0, 50, size=(n, h, w, channels))
    side_h, side_w = max(2, h // 4), max(2, w // 4)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 4)  # a 3×4 grid of places, 10 used
        top = 1 + row * (h - side_h - 2) // 2 + int(rng.integers(-1, 2))
        left = 1 + col * (w - side_w - 2) // 3 + int(rng.integers(-1, 2))
        top, left = min(max(top, 0), h - side_h), min(max(left, 0), w - side_w)
        colour = _COLOURS[label % len(_COLOURS)] if channels == 3 else np.array([255.0])
        bright = rng.uniform(0.8, 1.0) * colour
        images[i, top : top + side_h, left : left + side_w, :] = bright
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of unsigned bytes: magic 0x0000080D (D = ndim), sizes, data."""
    magic = 0x0800 | array.ndim  # 2051 for images (3 dims), 2049 for labels (1 dim)
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(
    root, n_train: int = 64, n_test: int = 32, seed: int = 0, folder: str = "MNIST"
) -> Path:
    """`<root>/<folder>/raw/{train,t10k}-{images-idx3-ubyte,labels-idx1-ubyte}`, 28×28 gray.

    `folder="FashionMNIST"` writes the Fashion-MNIST layout (the format is the same).
    """
    root = Path(root)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = balanced_labels(n, rng)
        images = class_images(labels, (28, 28), 1, rng)[..., 0]
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def write_fashion_mnist(root, n_train: int = 64, n_test: int = 32, seed: int = 0) -> Path:
    return write_mnist(root, n_train, n_test, seed, folder="FashionMNIST")


CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def write_cifar10(root, n_per_batch: int = 20, seed: int = 0) -> Path:
    """`<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`.

    Python pickles as in the official release: each batch a dict with "batch_label",
    "labels" (list of int), "data" (uint8 N×3072: the red plane, then green, then blue, each
    row-major 32×32) and "filenames". Their md5s differ from the official ones; see
    `bench.data.torchvision_sets` for how the loader handles that.
    """
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        labels = balanced_labels(n_per_batch, rng)
        images = class_images(labels, (32, 32), 3, rng)  # N×H×W×C
        batch = {
            "batch_label": f"{'testing' if name == 'test_batch' else 'training'} batch {b + 1}",
            "labels": [int(v) for v in labels],
            "data": images.transpose(0, 3, 1, 2).reshape(n_per_batch, 3 * 32 * 32),
            "filenames": [f"fixture_{b}_{i}.png" for i in range(n_per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    meta = {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": n_per_batch, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return root


def write_svhn(root, n_train: int = 40, n_test: int = 20, seed: int = 0) -> Path:
    """`<root>/{train,test}_32x32.mat`: MATLAB files with X uint8 32×32×3×N, y uint8 N×1.

    As in the official files, the digit 0 has the label 10.
    """
    from scipy.io import savemat

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        digits = balanced_labels(n, rng)
        images = class_images(digits, (32, 32), 3, rng)  # N×H×W×C
        raw_labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(n, 1)
        savemat(root / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": raw_labels})
    return root


def write_imagefolder(
    root,
    classes: Sequence[str] = ("a", "b"),
    n_per_class: int = 6,
    size: tuple[int, int] = (12, 12),
    seed: int = 0,
    with_splits: bool = False,
) -> Path:
    """RGB PNGs at `<root>/<class>/<i>.png`, or with `with_splits` at
    `<root>/{train,test}/<class>/<i>.png` (`n_per_class` per split). `size` is (H, W)."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for split_dir in ([root / "train", root / "test"] if with_splits else [root]):
        for index, cls in enumerate(classes):
            folder = split_dir / cls
            folder.mkdir(parents=True, exist_ok=True)
            labels = np.full(n_per_class, index % NUM_CLASSES, dtype=np.uint8)
            for i, image in enumerate(class_images(labels, size, 3, rng)):
                Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root
