"""The catastrophic-overfitting watch, and which epoch's weights training keeps.

Catastrophic overfitting (Wong et al. 2020, §5): during FGSM training, accuracy on the
training perturbations keeps rising while PGD accuracy collapses within an epoch or two. The
loop measures PGD accuracy on a fixed held-out batch after every adversarial epoch; the rule
below flags an epoch, and `OverfitWatch` decides which epoch's weights training returns:

- keep "best-pgd": the unflagged epoch with the best held-out PGD accuracy (the latest among
  ties), as early stopping for FGSM-RS (Wong et al. 2020; Rice et al. 2020).
- keep "last": the last epoch trained.
- stop_on_overfit: training stops at the first flagged epoch, whose weights are never kept.

Training that leaves no epoch to keep (a flag in epoch 1 with stop_on_overfit, or every epoch
flagged under best-pgd) fails the cell with the reason: collapsed weights are not kept silently.
"""

from __future__ import annotations

import copy
import math

from torch import nn

from bench.errors import CellFailed

# An epoch is flagged when accuracy on the training perturbations is high (≥ CO_MIN_TRAIN_ACC)
# while held-out PGD accuracy has collapsed: either below CO_RELATIVE × the best PGD accuracy
# of earlier epochs (once that best was meaningful, ≥ CO_MIN_BEST), or below CO_NEAR_ZERO
# outright. Requiring high training accuracy is what tells overfitting apart from a model that
# is simply not robust yet.
CO_MIN_TRAIN_ACC = 0.5
CO_RELATIVE = 0.3
CO_MIN_BEST = 0.1
CO_NEAR_ZERO = 0.02


def catastrophic_overfit(train_acc: float, pgd_acc: float, best_pgd_before: float) -> bool:
    """The rule above: high accuracy on the training perturbations, collapsed PGD accuracy."""
    collapsed = pgd_acc < CO_NEAR_ZERO or (
        best_pgd_before >= CO_MIN_BEST and pgd_acc < CO_RELATIVE * best_pgd_before)
    return bool(collapsed and train_acc >= CO_MIN_TRAIN_ACC)


class OverfitWatch:
    """Feed it every epoch (`observe`), then let it put the kept weights back (`restore`)."""

    def __init__(self, adversarial: bool, keep: str, stop_on_overfit: bool):
        if keep not in ("best-pgd", "last"):
            raise ValueError(f"unknown keep rule {keep!r}")
        self.adversarial, self.keep, self.stop_on_overfit = adversarial, keep, stop_on_overfit
        self.best_pgd = -math.inf  # over every epoch so far, flagged or not (the rule's input)
        self.kept_epoch: int | None = None
        self.kept_pgd = -math.inf
        self.kept_state: dict | None = None  # None: the model's current weights
        self.first_flag: tuple[int, float, float] | None = None  # (epoch, train acc, PGD acc)

    def observe(self, epoch: int, train_acc: float, pgd_acc: float, model: nn.Module) -> bool:
        """Whether `epoch` is flagged; remembers its weights if they are the ones to keep."""
        flagged = self.adversarial and catastrophic_overfit(train_acc, pgd_acc, self.best_pgd)
        if flagged and self.first_flag is None:
            self.first_flag = (epoch, train_acc, pgd_acc)
        if self.adversarial:
            self.best_pgd = max(self.best_pgd, pgd_acc)
        if self.keep == "last" and not (flagged and self.stop_on_overfit):
            self.kept_epoch = epoch
            # A later epoch may be flagged and stop training: only then are these weights needed.
            self.kept_state = copy.deepcopy(model.state_dict()) if self.stop_on_overfit else None
        elif self.keep == "best-pgd" and not flagged and pgd_acc >= self.kept_pgd:
            self.kept_epoch, self.kept_pgd = epoch, pgd_acc
            self.kept_state = copy.deepcopy(model.state_dict())
        return flagged

    def should_stop(self, flagged: bool) -> bool:
        return flagged and self.stop_on_overfit

    def restore(self, model: nn.Module, last_epoch: int) -> int:
        """Load the kept weights into `model` and return their epoch."""
        if self.kept_epoch is None:
            epoch, train_acc, pgd_acc = self.first_flag or (last_epoch, math.nan, math.nan)
            why = ("training stopped there (stop_on_overfit) with no earlier epoch to keep"
                   if self.stop_on_overfit else "every epoch was flagged, so keep = \"best-pgd\" "
                   "has none to keep")
            raise CellFailed(
                f"catastrophic overfitting in epoch {epoch} (held-out PGD accuracy {pgd_acc:.3f} "
                f"at training accuracy {train_acc:.3f}): {why}; lower epsilon or alpha, or use "
                "random_start")
        if self.kept_state is not None and self.kept_epoch != last_epoch:
            model.load_state_dict(self.kept_state)
        return self.kept_epoch
