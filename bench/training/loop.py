"""`train_classifier`: one loop for the standard, FGSM-RS and PGD recipes.

Returns one history row per epoch. Adversarial recipes also measure PGD-10 accuracy on a
fixed held-out batch after every epoch, which is how catastrophic overfitting shows up
(Wong et al. 2020, §5): PGD accuracy collapses while accuracy on the training
perturbations keeps rising.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from bench.data import ImageData
from bench.errors import CellFailed
from bench.suite.schema import TrainConfig
from bench.training import perturb

HELDOUT_PGD_SAMPLES = 256  # the fixed batch for the per-epoch PGD-10 check
HELDOUT_PGD_STEPS = 10
EVAL_BATCH_SIZE = 512
WARMUP_FRACTION = 0.2  # of all steps, for the one-cycle learning-rate schedule

# Catastrophic overfitting rule. An epoch is flagged when accuracy on the training
# perturbations is high (≥ CO_MIN_TRAIN_ACC) while held-out PGD accuracy has collapsed:
# either below CO_RELATIVE × the best PGD accuracy of earlier epochs (once that best was
# meaningful, ≥ CO_MIN_BEST), or below CO_NEAR_ZERO outright. Requiring high training
# accuracy is what tells overfitting apart from a model that is simply not robust yet.
CO_MIN_TRAIN_ACC = 0.5
CO_RELATIVE = 0.3
CO_MIN_BEST = 0.1
CO_NEAR_ZERO = 0.02


def train_classifier(
    model: nn.Module,
    train: ImageData,
    heldout: ImageData,
    train_cfg: TrainConfig,
    seed: int,
    device: str,
    progress: bool = False,
) -> list[dict]:
    """Train `model` in place on `train` with the recipe in `train_cfg` (a resolved
    `TrainConfig`). For adversarial recipes `train_loss`/`train_acc` are measured on
    the perturbed training batches, as Wong et al. report them. `seconds` is the epoch's
    wall time including the held-out evaluation."""
    recipe = train_cfg.recipe
    adversarial = recipe != "standard"
    epsilon = train_cfg.epsilon
    if adversarial and epsilon is None:
        raise ValueError(f"recipe {recipe!r} needs an epsilon")
    model.to(device)
    x_train, y_train = train.x.to(device), train.y.to(device)
    n = len(y_train)
    batch_size = min(train_cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / batch_size)
    epochs = train_cfg.epochs

    shuffle_gen = torch.Generator().manual_seed(seed)
    attack_gen = torch.Generator(device=device).manual_seed(seed + 1)
    optimizer = _optimizer(model, train_cfg)
    scheduler = _one_cycle(optimizer, epochs * steps_per_epoch)
    check_x = heldout.x[:HELDOUT_PGD_SAMPLES].to(device)
    check_y = heldout.y[:HELDOUT_PGD_SAMPLES].to(device)

    history: list[dict] = []
    best_pgd = -math.inf
    last_good_state = None
    bar = tqdm(range(1, epochs + 1), desc=f"train {recipe}", leave=False, disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        # Summed on the device: no host sync per step.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for idx in torch.randperm(n, generator=shuffle_gen).to(device).split(batch_size):
            if len(idx) < 2:
                continue  # BatchNorm cannot normalise a batch of one sample in train mode
            x, y = x_train[idx], y_train[idx]
            if adversarial:
                # Perturbations are generated in train mode, as in Wong et al.'s and Madry et
                # al.'s reference code: the attack then sees exactly the function (BatchNorm on
                # batch statistics) whose loss the step minimises. (BatchNorm's running stats
                # also see the attack's forward pass, as in their code.)
                x = _perturb(model, x, y, train_cfg, attack_gen)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
        train_loss, train_acc = loss_sum.item() / seen, correct.item() / seen
        if not math.isfinite(train_loss):
            raise CellFailed(f"training diverged in epoch {epoch} (loss {train_loss})")

        model.eval()
        clean_acc = accuracy(model, heldout.x, heldout.y, device)
        pgd_acc = math.nan
        overfit = False
        if adversarial:
            pgd_acc = _heldout_pgd_accuracy(model, check_x, check_y, epsilon, seed)
            overfit = catastrophic_overfit(train_acc, pgd_acc, best_pgd)
        history.append({
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "heldout_clean_acc": clean_acc,
            "heldout_pgd_acc": pgd_acc,
            "catastrophic_overfit": overfit,
            "seconds": time.perf_counter() - start,
        })
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{clean_acc:.3f}",
                        pgd="-" if math.isnan(pgd_acc) else f"{pgd_acc:.3f}")
        if overfit and train_cfg.stop_on_overfit:
            # Wong et al.'s early stopping: keep the weights from before the collapse.
            if last_good_state is not None:
                model.load_state_dict(last_good_state)
            break
        if adversarial:
            best_pgd = max(best_pgd, pgd_acc)
            if train_cfg.stop_on_overfit:
                last_good_state = copy.deepcopy(model.state_dict())
    bar.close()
    model.eval()
    return history


def catastrophic_overfit(train_acc: float, pgd_acc: float, best_pgd_before: float) -> bool:
    """The rule above: high accuracy on the training perturbations, collapsed PGD accuracy."""
    collapsed = pgd_acc < CO_NEAR_ZERO or (
        best_pgd_before >= CO_MIN_BEST and pgd_acc < CO_RELATIVE * best_pgd_before)
    return bool(collapsed and train_acc >= CO_MIN_TRAIN_ACC)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> float:
    """Clean accuracy in eval mode; `x`, `y` may live on any device."""
    if len(y) == 0:
        return math.nan
    correct = 0
    with torch.inference_mode():
        for xb, yb in zip(x.split(EVAL_BATCH_SIZE), y.split(EVAL_BATCH_SIZE)):
            correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()
    return correct / len(y)


def _perturb(model, x, y, cfg, generator) -> torch.Tensor:
    if cfg.recipe == "fgsm-rs":
        if not cfg.random_start:
            # Plain FGSM training, the baseline Wong et al. improve on.
            alpha = cfg.alpha or cfg.epsilon
            return perturb.pgd(model, x, y, cfg.epsilon, 1, alpha, random_start=False)
        return perturb.fgsm_rs(model, x, y, cfg.epsilon, cfg.alpha, generator)
    if cfg.recipe == "pgd":
        return perturb.pgd(model, x, y, cfg.epsilon, cfg.steps, cfg.alpha, cfg.random_start,
                           generator)
    raise ValueError(f"unknown training recipe {cfg.recipe!r}")


def _heldout_pgd_accuracy(model, x, y, epsilon, seed) -> float:
    # The same random start every epoch, so epoch-to-epoch changes come from the model only.
    gen = torch.Generator(device=x.device).manual_seed(seed + 2)
    x_adv = perturb.pgd(model, x, y, epsilon, HELDOUT_PGD_STEPS, generator=gen)
    with torch.inference_mode():
        return (model(x_adv).argmax(1) == y).float().mean().item()


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params, lr, wd = model.parameters(), cfg.lr, cfg.weight_decay
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def _one_cycle(optimizer: torch.optim.Optimizer, total_steps: int) -> LambdaLR:
    """Linear warm-up to `lr`, then linear decay to zero. Wong et al. credit this kind of
    cyclic schedule for both short training and fewer catastrophic-overfitting runs."""
    warmup = max(1, int(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return LambdaLR(optimizer, factor)
