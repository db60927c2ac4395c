"""Robustness metrics for one (model, attack, ε) and evaluation sanity checks over a run.

`robustness_row` turns predictions into the numbers of one robustness-table row (floats
unrounded). `sanity_checks` applies the checks Carlini et al. (2019, "On evaluating
adversarial robustness", §5) recommend to a whole robustness table.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

LINF_TOLERANCE = 1e-6  # float32 rounding in x + δ - x
NOISE_SE = 2.0  # a difference counts once it exceeds this many binomial standard errors
ZERO_GRAD_WARN = 0.5  # above this fraction of exactly-zero input gradients, suspect masking


def robustness_row(y: torch.Tensor, clean_pred: torch.Tensor, adv_pred: torch.Tensor,
                   linf: torch.Tensor, epsilon: float) -> dict:
    """Accuracy counts the adversarial prediction only (`adv_pred == y`), as torchattacks and
    RobustBench do; the success rate is over the samples the model got right unattacked."""
    n = len(y)
    clean_ok = clean_pred.cpu() == y.cpu()
    adv_ok = adv_pred.cpu() == y.cpu()
    n_clean = int(clean_ok.sum())
    clean_acc = n_clean / n if n else math.nan
    robust_acc = int(adv_ok.sum()) / n if n else math.nan
    acc_drop = clean_acc - robust_acc
    linf = linf.detach().cpu().double()
    linf_max = float(linf.max()) if n else 0.0
    return {
        "n": n,
        "clean_acc": clean_acc,
        "robust_acc": robust_acc,
        "acc_drop": acc_drop,
        "relative_drop": acc_drop / clean_acc if n_clean else math.nan,
        "attack_success_rate": int((clean_ok & ~adv_ok).sum()) / n_clean if n_clean else math.nan,
        "linf_mean": float(linf.mean()) if n else math.nan,
        "linf_max": linf_max,
        "linf_ok": bool(linf_max <= epsilon + LINF_TOLERANCE),
    }


def sanity_checks(robustness_df: pd.DataFrame) -> list[dict]:
    """One row per check and (model, attack, ε, seed): check, model, attack, epsilon (None
    for per-run checks), seed, passed, value, detail. Checks whose columns are missing are
    skipped, so older or partial tables still get the others."""
    df = robustness_df
    if df.empty:
        return []
    context = [c for c in ("dataset", "split") if c in df.columns]
    rows: list[dict] = []
    for keys, g in df.groupby(["model", "attack", "seed", *context], sort=True, dropna=False):
        model, attack, seed = keys[:3]
        where = _where(dict(zip(context, keys[3:])))
        g = g.sort_values("epsilon")
        rows += _monotone_in_epsilon(g, model, attack, seed, where)
        rows += _zero_epsilon_is_clean(g, model, attack, seed, where)
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
        if "linf_ok" in g:
            bad = int((~g["linf_ok"].astype(bool)).sum())
            rows.append(_row("linf_within_epsilon", model, attack, None, seed, bad == 0, bad,
                             f"{model}/{attack} seed {seed}{where}: " + (
                                 "every perturbation stays in its ε-ball" if bad == 0 else
                                 f"{bad} ε have perturbations larger than ε")))
    rows += _pgd_not_weaker_than_fgsm(df, context)
    return rows


def _monotone_in_epsilon(g: pd.DataFrame, model, attack, seed, where) -> list[dict]:
    """A stronger budget can only help the attacker: accuracy must not rise with ε."""
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


def _pgd_not_weaker_than_fgsm(df: pd.DataFrame, context: list[str]) -> list[dict]:
    """PGD's first step from the clean point is FGSM's, so it must do at least as well."""
    keys = ["model", "seed", "epsilon", *context]
    fgsm = df[df["attack"] == "fgsm"].drop_duplicates(keys)
    pgd = df[df["attack"] == "pgd"].drop_duplicates(keys)
    if fgsm.empty or pgd.empty:
        return []
    both = pgd.merge(fgsm, on=keys, suffixes=("_pgd", "_fgsm"))
    rows = []
    for r in both.sort_values(keys).itertuples():
        gap = r.robust_acc_pgd - r.robust_acc_fgsm
        tol = _noise(r.robust_acc_pgd, r.robust_acc_fgsm, min(r.n_pgd, r.n_fgsm))
        where = _where({c: getattr(r, c) for c in context})
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
    return "".join(f", {k} {v}" for k, v in context.items())


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
