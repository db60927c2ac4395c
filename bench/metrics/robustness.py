"""Robustness metrics for one (model, attack, ε).

`robustness_row` turns predictions into the numbers of one robustness-table row (floats
unrounded). The evaluation sanity checks over them are in bench.checks.
"""

from __future__ import annotations

import math

import torch

from bench.metrics.binomial import interval_columns
from bench.suite.attack_options import SETTING_KEYS as ATTACK_SETTING_KEYS

LINF_TOLERANCE = 1e-6  # float32 rounding in x + δ - x
L2_REL_TOLERANCE = 1e-5  # float32 rounding of a norm summed over every pixel


def robustness_row(y: torch.Tensor, clean_pred: torch.Tensor, adv_pred: torch.Tensor,
                   linf: torch.Tensor, epsilon: float, *, l2: torch.Tensor | None = None,
                   norm: str = "linf") -> dict:
    """The accuracy columns (see `accuracy_columns`) and the perturbation sizes: L∞ always,
    L2 when given, and `within_epsilon`, the size check in the threat model's norm."""
    clean_ok = clean_pred.cpu() == y.cpu()
    adv_ok = adv_pred.cpu() == y.cpu()
    linf = linf.detach().cpu().double()
    n = len(y)
    row = accuracy_columns(clean_ok, adv_ok)
    row |= {
        "linf_mean": float(linf.mean()) if n else math.nan,
        "linf_max": float(linf.max()) if n else 0.0,
        "linf_ok": bool(float(linf.max()) <= epsilon + LINF_TOLERANCE) if n else True,
    }
    if l2 is not None:
        l2 = l2.detach().cpu().double()
        row |= {"l2_mean": float(l2.mean()) if n else math.nan,
                "l2_max": float(l2.max()) if n else 0.0}
    if norm == "l2" and l2 is None:
        raise ValueError("robustness_row: norm 'l2' needs the per-sample l2 sizes")
    size = row["l2_max"] if norm == "l2" else row["linf_max"]
    row["within_epsilon"] = bool(size <= epsilon * (1 + L2_REL_TOLERANCE) + LINF_TOLERANCE)
    return row


def accuracy_columns(clean_ok: torch.Tensor, adv_ok: torch.Tensor) -> dict:
    """Per-example correctness (bool, clean and under attack) -> the accuracy columns.

    `robust_acc` follows RobustBench, AutoAttack and the PyTorch FGSM tutorial: an example is
    robust only if it is right both clean and under attack, so robust_acc <= clean_acc.
    `adv_acc` is the share right under attack whatever the clean prediction (what
    torchattacks' own accuracy counts; an example the attack happens to fix counts there
    only). The success rate is over the examples right unattacked. Every proportion comes
    with its binomial interval over examples (`*_binom_low/high`).
    """
    clean_ok, adv_ok = _bools(clean_ok), _bools(adv_ok)
    robust_ok = clean_ok & adv_ok
    n, n_clean, n_robust = len(clean_ok), int(clean_ok.sum()), int(robust_ok.sum())
    n_adv = int(adv_ok.sum())
    clean_acc = n_clean / n if n else math.nan
    robust_acc = n_robust / n if n else math.nan
    acc_drop = clean_acc - robust_acc
    n_broken = n_clean - n_robust
    return {
        "n": n,
        "n_clean_correct": n_clean,
        "clean_acc": clean_acc,
        "robust_acc": robust_acc,
        "adv_acc": n_adv / n if n else math.nan,
        "acc_drop": acc_drop,
        "relative_drop": acc_drop / clean_acc if n_clean else math.nan,
        "attack_success_rate": n_broken / n_clean if n_clean else math.nan,
        **interval_columns("clean_acc", n_clean, n),
        **interval_columns("robust_acc", n_robust, n),
        **interval_columns("adv_acc", n_adv, n),
        **interval_columns("attack_success_rate", n_broken, n_clean),
    }


def _bools(t) -> torch.Tensor:
    return torch.as_tensor(t).cpu().bool().reshape(-1)


# What was evaluated, shared by every attack on it: rows of different values never compare
# (bench.checks.rows).
CONTEXT_KEYS = ("dataset", "split", "data_fingerprint", "checkpoint_sha256", "limit")
# One attack's settings: two settings of one attack (PGD-10 and PGD-100) are checked apart.
# `alpha` here must be the configured step (None: 2.5·ε/steps), not the per-ε resolved one.
SETTING_KEYS = (*ATTACK_SETTING_KEYS, "batch_size")


def format_setting(value) -> str:
    """10.0 -> "10": integer settings become floats in a column that also holds None."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_unset(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
