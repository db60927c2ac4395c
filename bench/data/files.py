"""What each dataset kind needs on disk, checked without reading a single image.

`bench validate` and the check before `bench run` writes anything use this module, so it
imports neither torch, torchvision nor scikit-learn: validating a suite is pure Python plus
file checks. The loaders (torchvision_sets, imagefolder, digits) refuse exactly what this
module refuses, under the same key (torchvision_sets shares its messages), so a suite that
validates also loads; tests/test_data_files.py holds the two sides against each other.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.errors import DatasetNotFound, UserError
from bench.suite.cell_configs import DatasetSpec

# torchvision.datasets.folder.IMG_EXTENSIONS (a test keeps the two equal).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
IMAGEFOLDER_LAYOUT = "<root>/<class>/<image> or <root>/{train,test}/<class>/<image>"
# Images per class of scikit-learn's load_digits (a test keeps this equal to the data).
DIGITS_CLASS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)


@dataclass(frozen=True)
class Source:
    title: str
    files: Callable[[str], list[str]]  # split -> files (relative to root) torchvision requires
    layout: str  # the expected layout, for error messages


def _mnist_files(folder: str) -> Callable[[str], list[str]]:
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    return lambda split: [f"{folder}/raw/{n}" for n in names]  # both splits need all four


def _mnist_layout(folder: str) -> str:
    return (f"<root>/{folder}/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (uncompressed IDX files)")


_CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]

SOURCES = {
    "mnist": Source("MNIST", _mnist_files("MNIST"), _mnist_layout("MNIST")),
    "fashion-mnist": Source("Fashion-MNIST", _mnist_files("FashionMNIST"),
                            _mnist_layout("FashionMNIST")),
    "cifar10": Source(
        "CIFAR-10", lambda split: [f"cifar-10-batches-py/{n}" for n in _CIFAR_FILES],
        "<root>/cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch, batches.meta"
        " (the python pickle version)"),
    "svhn": Source("SVHN", lambda split: [f"{split}_32x32.mat"],
                   "<root>/train_32x32.mat and <root>/test_32x32.mat (the cropped-digits format)"),
}


def missing_files(root: Path, kind: str, split: str) -> list[str]:
    return [f for f in SOURCES[kind].files(split) if not (root / f).is_file()]


def not_found_message(cfg: DatasetSpec, kind: str, root: Path, missing: list[str],
                      why: str = "") -> str:
    source = SOURCES[kind]
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    if (root / f"{missing[0]}.gz").is_file():  # torchvision reads only unpacked IDX files
        more += f"; {root / missing[0]}.gz is there: gunzip it"
    return (f"datasets.{cfg.name}.root: {source.title} not found in '{root}' "
            f"(missing {root / missing[0]}{more}{why}); expected {source.layout}; copy the files "
            "there, or set download = true where there is a network")


def stratified_split_problem(class_counts: list[int], test_fraction: float) -> str | None:
    """Why scikit-learn's stratified train_test_split would refuse, or None.

    Its rules: the test split takes ceil(fraction * n) examples, the train split the rest,
    every class needs two examples, and each split at least one per class."""
    n, n_classes = sum(class_counts), len(class_counts)
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    if min(class_counts, default=0) < 2:
        return "each class needs 2 or more images"
    if n_train < n_classes or n_test < n_classes:
        return (f"the split would give {n_train} training and {n_test} test images "
                f"for {n_classes} classes (each split needs one per class)")
    return None


def check_digits(cfg: DatasetSpec) -> None:
    problem = stratified_split_problem(list(DIGITS_CLASS_COUNTS), cfg.test_fraction)
    if problem:
        raise UserError(f"datasets.{cfg.name}.test_fraction: cannot split the 1797 digits "
                        f"with test_fraction = {cfg.test_fraction} ({problem})")


def check_torchvision_files(cfg: DatasetSpec, split: str) -> None:
    if cfg.download:  # the loader fetches what is missing, or says why it could not
        return
    root = Path(cfg.root).expanduser()
    missing = missing_files(root, cfg.kind, split)
    if missing:
        raise DatasetNotFound(not_found_message(cfg, cfg.kind, root, missing))


def class_folders(cfg: DatasetSpec, directory: Path) -> list[str]:
    """The sorted class folders, as torchvision's find_classes lists them."""
    try:
        classes = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    except FileNotFoundError:
        classes = []
    if not classes:
        raise DatasetNotFound(f"datasets.{cfg.name}.root: no class folders in '{directory}'; "
                              f"expected {IMAGEFOLDER_LAYOUT}")
    return classes


def count_images(directory: Path) -> int:
    """Image files under `directory`, found as torchvision's ImageFolder finds them."""
    return sum(1 for _, _, names in os.walk(directory, followlinks=True)
               for name in names if name.lower().endswith(IMG_EXTENSIONS))


def check_imagefolder(cfg: DatasetSpec) -> None:
    name, root = cfg.name, Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DatasetNotFound(f"datasets.{name}.root: '{root}' is not a directory; expected "
                              f"{IMAGEFOLDER_LAYOUT} (image files: {', '.join(IMG_EXTENSIONS)})")
    has = {s: (root / s).is_dir() for s in ("train", "test")}
    if has["train"] != has["test"]:
        present, absent = ("train", "test") if has["train"] else ("test", "train")
        raise DatasetNotFound(f"datasets.{name}.root: '{root / present}' exists but "
                              f"'{root / absent}' does not; expected {IMAGEFOLDER_LAYOUT}")
    top = root / "train" if has["train"] else root
    classes = class_folders(cfg, top)
    counts = [count_images(top / c) for c in classes]
    empty = [c for c, k in zip(classes, counts) if k == 0]
    if empty:
        raise DatasetNotFound(f"datasets.{name}.root: no image files for the classes {empty} in "
                              f"'{top}' (image files: {', '.join(IMG_EXTENSIONS)}; "
                              f"expected {IMAGEFOLDER_LAYOUT})")
    if has["train"]:
        extra = sorted(set(class_folders(cfg, root / "test")) - set(classes))
        if extra:
            raise UserError(f"datasets.{name}.root: classes {extra} are in '{root / 'test'}' "
                            f"but not in '{root / 'train'}'")
        if not any(count_images(root / "test" / c) for c in classes):
            raise DatasetNotFound(f"datasets.{name}.root: no images in '{root / 'test'}'")
        return
    problem = stratified_split_problem(counts, cfg.test_fraction)
    if problem:
        raise UserError(f"datasets.{name}: cannot split {sum(counts)} images of {len(classes)} "
                        f"classes with test_fraction = {cfg.test_fraction} ({problem})")


def check_dataset_files(cfg: DatasetSpec) -> None:
    """Raise the loader's UserError for a dataset whose files cannot make both splits."""
    if cfg.kind == "digits":
        check_digits(cfg)
    elif cfg.kind == "imagefolder":
        check_imagefolder(cfg)
    elif cfg.kind in SOURCES:
        for split in ("train", "test"):
            check_torchvision_files(cfg, split)
