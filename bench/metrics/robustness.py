"""Robustness metrics for one (model, attack, ε) and evaluation sanity checks over a run.

`robustness_row` turns predictions into the numbers of one robustness-table row (floats
unrounded). `sanity_checks` applies the checks Carlini et al. (2019, "On evaluating
adversarial robustness", §5) recommend to a whole robustness table.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from bench.metrics.binomial import interval_columns
from bench.suite.attack_options import SETTING_KEYS as ATTACK_SETTING_KEYS

LINF_TOLERANCE = 1e-6  # float32 rounding in x + δ - x
L2_REL_TOLERANCE = 1e-5  # float32 rounding of a norm summed over every pixel
NOISE_SE = 2.0  # a difference counts once it exceeds this many binomial standard errors
ZERO_GRAD_WARN = 0.5  # above this fraction of exactly-zero input gradients, suspect masking


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


# What was evaluated, shared by every attack on it: rows of different values never compare.
CONTEXT_KEYS = ("dataset", "split", "data_fingerprint", "checkpoint_sha256", "limit")
# One attack's settings: two settings of one attack (PGD-10 and PGD-100) are checked apart.
# `alpha` here must be the configured step (None: 2.5·ε/steps), not the per-ε resolved one.
SETTING_KEYS = (*ATTACK_SETTING_KEYS, "batch_size")


def sanity_checks(robustness_df: pd.DataFrame) -> list[dict]:
    """One row per check and (model, attack, ε, seed): check, model, attack, epsilon (None
    for per-run checks), seed, passed, value, detail. Rows are checked per model, attack,
    seed, context and attack setting (the CONTEXT_KEYS and SETTING_KEYS columns the table
    has). Checks whose columns are missing are skipped, so older or partial tables still
    get the others."""
    df = robustness_df
    if df.empty:
        return []
    context = [c for c in CONTEXT_KEYS if c in df.columns]
    settings = [c for c in SETTING_KEYS if c in df.columns]
    rows: list[dict] = []
    by = ["model", "attack", "seed", *context, *settings]
    for keys, g in df.groupby(by, sort=True, dropna=False):
        model, attack, seed = keys[:3]
        where = _where(dict(zip(context + settings, keys[3:])))
        g = g.sort_values("epsilon")
        rows += _monotone_in_epsilon(g, model, attack, seed, where)
        rows += _zero_epsilon_is_clean(g, model, attack, seed, where)
        rows += _per_group_flags(g, model, attack, seed, where)
    rows += _pgd_not_weaker_than_fgsm(df, context + [c for c in ("norm",) if c in settings],
                                      [c for c in settings if c != "norm"])
    return rows


def _per_group_flags(g: pd.DataFrame, model, attack, seed, where) -> list[dict]:
    """Eval mode, zero input gradients and the perturbation size, once per group."""
    rows = []
    if "eval_mode" in g:
        bad = int((~g["eval_mode"].astype(bool)).sum())
        rows.append(_row("eval_mode", model, attack, None, seed, bad == 0, bad,
                         f"{model}/{attack} seed {seed}{where}: " + (
                             "the model was in eval mode for every ε" if bad == 0 else
                             f"{bad} ε evaluated with modules in train mode (BatchNorm/"
                             "dropout then change the model under attack)")))
    if "zero_grad_frac" in g and g["zero_grad_frac"].notna().any():
        frac = float(g["zero_grad_frac"].max())
        rows.append(_row("zero_gradients", model, attack, None, seed, frac <= ZERO_GRAD_WARN,
                         frac, f"{model}/{attack} seed {seed}{where}: {frac:.1%} of input-"
                         f"gradient entries are exactly zero" + (
                             "" if frac <= ZERO_GRAD_WARN else
                             "; gradient masking likely, try a gradient-free attack")))
    if "output_warning" in g:
        warned = sorted({w for w in g["output_warning"].fillna("").astype(str) if w})
        rows.append(_row("logit_outputs", model, attack, None, seed, not warned, len(warned),
                         f"{model}/{attack} seed {seed}{where}: " + (
                             warned[0] if warned else "the model's outputs are not "
                             "probabilities (attacks take them for logits)")))
    # The size in the threat model's norm where the table has it, else L∞.
    size_ok = "within_epsilon" if "within_epsilon" in g else "linf_ok" if "linf_ok" in g else None
    if size_ok is not None:
        bad = int((~g[size_ok].astype(bool)).sum())
        rows.append(_row("linf_within_epsilon", model, attack, None, seed, bad == 0, bad,
                         f"{model}/{attack} seed {seed}{where}: " + (
                             "every perturbation stays in its ε-ball" if bad == 0 else
                             f"{bad} ε have perturbations larger than ε")))
    return rows


def _monotone_in_epsilon(g: pd.DataFrame, model, attack, seed, where) -> list[dict]:
    """A stronger budget can only help the attacker: accuracy must not rise with ε. (Unpaired;
    the paired version over per-example correctness is bench.checks.table.monotone_outcome.)"""
    rows, lowest = [], None
    for r in g.itertuples():
        if lowest is not None:
            rise = r.robust_acc - lowest
            tol = _noise(r.robust_acc, lowest, r.n)
            rows.append(_row("accuracy_non_increasing_in_epsilon", model, attack, r.epsilon, seed,
                             rise <= tol, rise, f"{model}/{attack} seed {seed}{where}: accuracy at "
                             f"ε={r.epsilon:g} is {r.robust_acc:.3f}, " + (
                                 f"not above the {lowest:.3f} of a smaller ε beyond noise"
                                 if rise <= tol else
                                 f"{rise:.3f} above the {lowest:.3f} of a smaller ε "
                                 f"(noise {tol:.3f}): the attack is failing at large ε")))
        lowest = r.robust_acc if lowest is None else min(lowest, r.robust_acc)
    return rows


def _zero_epsilon_is_clean(g: pd.DataFrame, model, attack, seed, where) -> list[dict]:
    rows = []
    for r in g[g["epsilon"] == 0].itertuples():
        diff = r.robust_acc - r.clean_acc
        rows.append(_row("zero_epsilon_is_clean", model, attack, 0.0, seed, abs(diff) < 1e-12, diff,
                         f"{model}/{attack} seed {seed}{where}: accuracy at ε=0 is "
                         f"{r.robust_acc:.3f} and clean accuracy {r.clean_acc:.3f}" + (
                             "" if abs(diff) < 1e-12 else
                             "; they must agree, so the evaluation itself is inconsistent")))
    return rows


def _pgd_not_weaker_than_fgsm(df: pd.DataFrame, context: list[str],
                              settings: list[str]) -> list[dict]:
    """FGSM is one signed-gradient step of size ε; PGD takes many projected steps on the same
    loss (from a random point when random_start is set, so its first step is not FGSM's),
    and a working PGD breaks at least about as many examples. Every PGD setting is held
    against the FGSM row of the same model, seed, ε and context. The paired version over
    per-example correctness is bench.checks.table.pgd_fgsm_outcome."""
    keys = ["model", "seed", "epsilon", *context]
    fgsm = df[df["attack"] == "fgsm"].drop_duplicates(keys)
    pgd = df[df["attack"] == "pgd"].drop_duplicates(keys + settings)
    if fgsm.empty or pgd.empty:
        return []
    both = pgd.merge(fgsm[keys + ["robust_acc", "n"]], on=keys, suffixes=("_pgd", "_fgsm"))
    rows = []
    for r in both.sort_values(keys + settings).itertuples():
        gap = r.robust_acc_pgd - r.robust_acc_fgsm
        tol = _noise(r.robust_acc_pgd, r.robust_acc_fgsm, min(r.n_pgd, r.n_fgsm))
        where = _where({c: getattr(r, c) for c in context + settings})
        rows.append(_row("pgd_not_weaker_than_fgsm", r.model, "pgd", r.epsilon, r.seed, gap <= tol,
                         gap, f"{r.model} seed {r.seed}{where} at ε={r.epsilon:g}: PGD accuracy "
                         f"{r.robust_acc_pgd:.3f}, FGSM {r.robust_acc_fgsm:.3f}" + (
                             "" if gap <= tol else
                             f"; PGD is weaker beyond noise ({tol:.3f}): too few steps, too "
                             "small a step size, or masked gradients")))
    return rows


def _noise(acc_a: float, acc_b: float, n: int) -> float:
    """NOISE_SE binomial standard errors at the pooled accuracy of the two."""
    p = (acc_a + acc_b) / 2
    return NOISE_SE * math.sqrt(p * (1 - p) / n) if n else math.inf


def _where(context: dict) -> str:
    """", dataset digits, steps 10": the values that tell groups apart (unset ones left out)."""
    return "".join(f", {k} {format_setting(v)}" for k, v in context.items() if not is_unset(v))


def format_setting(value) -> str:
    """10.0 -> "10": integer settings become floats in a column that also holds None."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_unset(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _row(check, model, attack, epsilon, seed, passed, value, detail) -> dict:
    return {
        "check": check,
        "model": model,
        "attack": attack,
        "epsilon": None if epsilon is None else float(epsilon),
        "seed": int(seed),
        "passed": bool(passed),
        "value": float(value),
        "detail": detail + ".",
    }
