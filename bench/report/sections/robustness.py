"""Robustness: accuracy against ε (one panel per dataset), tables, sanity-check warnings."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # reports render headless, also on Ray workers and CI
import matplotlib.pyplot as plt
import pandas as pd

from bench.report.blocks import Figure, Section, Table, Text, Warning_, figure_png
from bench.store import schema as S

ATTACK_STYLE = {"fgsm": "-", "pgd": "--"}


def sections(run, baseline) -> list[Section]:
    agg = run.table(S.ROBUSTNESS_AGG)
    if agg.empty:
        return []
    blocks = [Text("Robust accuracy under each attack, mean over seeds with a 95% confidence "
                   "band (Student t). Inputs are in [0, 1]; ε is in pixel units.")]
    blocks.append(Figure("robustness_accuracy_vs_epsilon", accuracy_vs_epsilon_png(agg),
                         "Accuracy against ε"))
    cols = ["model", "dataset", "attack", "epsilon", "n_seeds", "clean_acc_mean", "robust_acc_mean",
            "robust_acc_ci_low", "robust_acc_ci_high", "acc_drop_mean", "attack_success_rate_mean"]
    blocks.append(Table(agg[[c for c in cols if c in agg.columns]], "Robustness over seeds"))
    out = [Section("Robustness", blocks)]

    checks = run.table(S.CHECKS)
    warnings = []  # catastrophic overfitting is reported with training (sections/training.py)
    if not checks.empty:
        for row in checks[~checks["passed"].astype(bool)].itertuples():
            warnings.append(Warning_(f"{row.check}: {row.detail}"))
    if not checks.empty or warnings:
        summary = f"{len(checks)} checks, {len(warnings)} warnings." if not checks.empty else ""
        out.append(Section("Sanity checks", [Text(summary or "No checks recorded.")] + (
            warnings or [Text("All evaluation sanity checks passed (Carlini et al. 2019).")])))
    return out


def accuracy_vs_epsilon_png(agg: pd.DataFrame) -> bytes:
    panels = list(agg.groupby(["dataset", "split"], sort=True))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(sorted(agg["model"].unique()))}
    for ax, ((dataset, split), df) in zip(axes[0], panels):
        for (model, attack), g in df.groupby(["model", "attack"], sort=True):
            g = g.sort_values("epsilon")
            ax.plot(g["epsilon"], g["robust_acc_mean"], ATTACK_STYLE.get(attack, ":"), marker="o",
                    ms=3, color=colors[model], label=f"{model} / {attack.upper()}")
            if g["robust_acc_ci_low"].notna().any():
                ax.fill_between(g["epsilon"], g["robust_acc_ci_low"].clip(0, 1),
                                g["robust_acc_ci_high"].clip(0, 1), color=colors[model], alpha=0.15)
        ax.set(title=f"{dataset} ({split})", xlabel="ε (L∞, pixel units)", ylabel="accuracy",
               ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figure_png(fig)
