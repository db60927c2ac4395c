"""`train_classifier`: one loop for the standard, FGSM-RS and PGD recipes.

Returns one history row per epoch. Adversarial recipes also measure PGD-10 accuracy on a
fixed held-out batch after every epoch, which is how catastrophic overfitting shows up
(bench.training.overfit), and which picks the weights FGSM-RS keeps (the best-PGD epoch).
The row of the epoch whose weights training returns has `kept` set.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bench import defaults
from bench.data import ImageData
from bench.errors import CellFailed
from bench.suite.schema import TrainConfig
from bench.training import perturb
from bench.training.augment import augment
from bench.training.optim import make_optimizer, one_cycle
from bench.training.overfit import OverfitWatch

HELDOUT_PGD_SAMPLES = 256  # the fixed batch for the per-epoch PGD-10 check
HELDOUT_PGD_STEPS = 10
EVAL_BATCH_SIZE = 512

# Makes a training batch's inputs (augmented, perturbed) from (model, x, y).
InputFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def train_classifier(
    model: nn.Module,
    train: ImageData,
    heldout: ImageData,
    cfg: TrainConfig,
    seed: int,
    device: str,
    progress: bool = False,
) -> list[dict]:
    """Train `model` in place on `train` with the recipe `cfg`. For adversarial recipes
    `train_loss`/`train_acc` are measured on the perturbed training batches, as Wong et al.
    report them. `seconds` is the epoch's wall time including the held-out evaluation."""
    adversarial = cfg.recipe != "standard"
    model.to(device)
    x_train, y_train = train.x.to(device), train.y.to(device)
    n = len(y_train)
    batch_size = min(cfg.batch_size, n)
    shuffle_gen = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = one_cycle(optimizer, cfg.epochs * math.ceil(n / batch_size))
    inputs = batch_inputs(cfg, seed, device)
    watch = OverfitWatch(adversarial, cfg.keep or defaults.KEEP_BY_RECIPE[cfg.recipe],
                         cfg.stop_on_overfit)

    history: list[dict] = []
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"train {cfg.recipe}", leave=False,
               disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        batches = torch.randperm(n, generator=shuffle_gen).to(device).split(batch_size)
        train_loss, train_acc = train_epoch(model, x_train, y_train, batches, optimizer,
                                            scheduler, inputs)
        if not math.isfinite(train_loss):
            raise CellFailed(f"training diverged in epoch {epoch} (loss {train_loss})")
        clean_acc, pgd_acc = evaluate(model, heldout, cfg.epsilon if adversarial else None,
                                      seed, device)
        flagged = watch.observe(epoch, train_acc, pgd_acc, model)
        history.append({
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "heldout_clean_acc": clean_acc,
            "heldout_pgd_acc": pgd_acc,
            "catastrophic_overfit": flagged,
            "seconds": time.perf_counter() - start,
        })
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{clean_acc:.3f}",
                        pgd="-" if math.isnan(pgd_acc) else f"{pgd_acc:.3f}")
        if watch.should_stop(flagged):
            break
    bar.close()
    kept = watch.restore(model, last_epoch=history[-1]["epoch"])
    for row in history:
        row["kept"] = row["epoch"] == kept
    model.eval()
    return history


def train_epoch(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, batches,
                optimizer: torch.optim.Optimizer, scheduler, inputs: InputFn) -> tuple[float, float]:
    """One pass over `batches` (index tensors); (mean loss, accuracy) on the inputs trained on."""
    model.train()
    # Summed on the device: no host sync per step.
    loss_sum = torch.zeros((), device=x_train.device)
    correct = torch.zeros((), dtype=torch.long, device=x_train.device)
    seen = 0
    for idx in batches:
        if len(idx) < 2:
            continue  # BatchNorm cannot normalise a batch of one sample in train mode
        x, y = x_train[idx], y_train[idx]
        loss, logits = train_step(model, inputs(model, x, y), y, optimizer, scheduler)
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
    return loss_sum.item() / seen, correct.item() / seen


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               optimizer: torch.optim.Optimizer, scheduler) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser and schedule step on (x, y); returns the detached loss and the logits."""
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.detach(), logits


def batch_inputs(cfg: TrainConfig, seed: int, device: str) -> InputFn:
    """The recipe's inputs for a training batch: augmented if asked, then perturbed.

    Perturbations are generated in train mode, as in Wong et al.'s and Madry et al.'s reference
    code: the attack then sees exactly the function (BatchNorm on batch statistics) whose loss
    the step minimises. (BatchNorm's running stats also see the attack's forward pass, as in
    their code.)"""
    attack_gen = torch.Generator(device=device).manual_seed(seed + 1)
    augmenting = cfg.crop_padding > 0 or cfg.flip
    augment_gen = torch.Generator(device=device).manual_seed(seed + 3) if augmenting else None

    def make(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if augmenting:
            x = augment(x, cfg.crop_padding, cfg.flip, augment_gen)
        if cfg.recipe == "standard":
            return x
        return perturb_batch(model, x, y, cfg, attack_gen)

    return make


def perturb_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
                  generator: torch.Generator) -> torch.Tensor:
    if cfg.recipe == "fgsm-rs":
        if not cfg.random_start:
            # Plain FGSM training (one step of α = ε by default from x), the baseline Wong et
            # al. improve on; it overfits catastrophically at large ε.
            alpha = cfg.alpha or cfg.epsilon
            return perturb.pgd(model, x, y, cfg.epsilon, 1, alpha, random_start=False)
        return perturb.fgsm_rs(model, x, y, cfg.epsilon, cfg.alpha, generator)
    if cfg.recipe == "pgd":
        alpha = defaults.pgd_train_alpha(cfg.epsilon) if cfg.alpha is None else cfg.alpha
        return perturb.pgd(model, x, y, cfg.epsilon, cfg.steps, alpha, cfg.random_start,
                           generator)
    raise ValueError(f"unknown training recipe {cfg.recipe!r}")


def evaluate(model: nn.Module, heldout: ImageData, epsilon: float | None, seed: int,
             device: str) -> tuple[float, float]:
    """(clean accuracy on `heldout`, PGD-10 accuracy on its first HELDOUT_PGD_SAMPLES, or NaN
    without `epsilon`), in eval mode."""
    model.eval()
    clean_acc = accuracy(model, heldout.x, heldout.y, device)
    if epsilon is None:
        return clean_acc, math.nan
    x = heldout.x[:HELDOUT_PGD_SAMPLES].to(device)
    y = heldout.y[:HELDOUT_PGD_SAMPLES].to(device)
    # The same random start every epoch, so epoch-to-epoch changes come from the model only.
    gen = torch.Generator(device=x.device).manual_seed(seed + 2)
    alpha = defaults.pgd_eval_alpha(epsilon, HELDOUT_PGD_STEPS)
    x_adv = perturb.pgd(model, x, y, epsilon, HELDOUT_PGD_STEPS, alpha, generator=gen)
    with torch.inference_mode():
        return clean_acc, (model(x_adv).argmax(1) == y).float().mean().item()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> float:
    """Clean accuracy in eval mode; `x`, `y` may live on any device."""
    if len(y) == 0:
        return math.nan
    correct = 0
    with torch.inference_mode():
        for xb, yb in zip(x.split(EVAL_BATCH_SIZE), y.split(EVAL_BATCH_SIZE)):
            correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()
    return correct / len(y)
