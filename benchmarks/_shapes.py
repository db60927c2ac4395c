"""The model shapes the attack benchmarks run on: real architectures, MNIST- and CIFAR-sized.

No dataset download is possible here, so the images are scikit-learn's real 8×8 digits,
upsampled (bilinear) and shifted by up to 2 pixels (`_common.upsampled_digits`); the ResNet's
are the same digits at 32×32, repeated over 3 channels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from benchmarks._common import train_briefly, upsampled_digits

SHAPES = ("lenet", "small-cnn", "resnet18", "lenet-mnist")


@dataclass
class Shape:
    name: str
    title: str
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    nll: bool  # the model outputs log-probabilities (the tutorial's loss is nll_loss)
    factory: str  # the zero-argument factory a suite names to build `model` (benchmarks._models)
    notes: list[str] = field(default_factory=list)


def build_shape(name: str, images: int, device: str | torch.device = "cpu",
                train_images: int = 10_000, side: int | None = None) -> Shape:
    """`images` test images and a model in eval mode, both on `device`:

    lenet      the PyTorch FGSM tutorial's LeNet (benchmarks/_models.py) on 1×28×28,
               trained 2 epochs on `train_images` images (on `device`)
    lenet-mnist  the same LeNet, for the MNIST test set's shape (10,000 × 1×28×28) as the
               FGSM tutorial's user runs it (fgsm_sweep.SETTINGS: `threads = "all"`)
    small-cnn  bench's small CNN (bench.models.small_cnn) on 1×8×8, trained 2 epochs
    resnet18   bench's CIFAR ResNet-18 (bench.models.resnet) on 3×32×32, untrained

    `side` changes the image side (tests run the ResNet on 3×8×8: its stem takes any size).
    """
    from bench.models.build import build_classifier
    from benchmarks._models import TutorialLeNet

    t0 = time.perf_counter()
    torch.manual_seed(0)
    if name in ("lenet", "lenet-mnist"):
        x_train, y_train = upsampled_digits(train_images, size=side or 28, split="train", seed=1)
        x, y = upsampled_digits(images, size=side or 28, split="test", seed=2)
        model = train_briefly(TutorialLeNet().to(device), x_train.to(device), y_train.to(device),
                              epochs=2, batch_size=64)
        title = ("tutorial LeNet at the MNIST test set's shape" if name == "lenet-mnist"
                 else "tutorial LeNet")
        shape = Shape(name, f"{title}, {images} × 1×{side or 28}×{side or 28}", model, x, y,
                      True, "benchmarks._models:tutorial_lenet")
    elif name == "small-cnn":
        x_train, y_train = upsampled_digits(train_images, size=side or 8, split="train", seed=1,
                                            max_shift=1)
        x, y = upsampled_digits(images, size=side or 8, split="test", seed=2, max_shift=1)
        model = build_classifier("small-cnn", None, (1, side or 8, side or 8), 10).to(device)
        model = train_briefly(model, x_train.to(device), y_train.to(device), epochs=2)
        shape = Shape(name, f"bench small-cnn, {images} × 1×{side or 8}×{side or 8}", model,
                      x, y, False, "benchmarks._models:small_cnn_8x8")
    elif name == "resnet18":
        x, y = upsampled_digits(images, size=side or 32, split="test", seed=2)
        x = x.repeat(1, 3, 1, 1).contiguous()
        model = build_classifier("resnet18", None, (3, side or 32, side or 32), 10)
        shape = Shape(name, f"bench resnet18 (CIFAR stem), {images} × 3×{side or 32}×"
                      f"{side or 32}", model, x, y,
                      False, "benchmarks._models:resnet18_32x32", ["untrained: chance-level accuracies; its time does not depend "
                              "on its weights, and training it here would take an hour"])
    else:
        raise SystemExit(f"unknown shape {name!r}; expected one of {', '.join(SHAPES)}")
    shape.model, shape.x, shape.y = shape.model.to(device), shape.x.to(device), shape.y.to(device)
    shape.model.eval()
    with torch.no_grad():
        clean = torch.cat([shape.model(xb).argmax(1) for xb in shape.x.split(512)])
    shape.notes.append(f"clean accuracy {(clean == shape.y).float().mean().item():.4f}")
    shape.notes.append(f"set up in {time.perf_counter() - t0:.1f} s")
    return shape
