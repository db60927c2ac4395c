"""Robustness: accuracy against ε (one panel per dataset and norm) and tables (sanity checks
and catastrophic overfitting have their own sections: sections/checks.py, sections/training.py).
Every line and row is one attack *setting* (PGD-10 and PGD-100 are two), labelled by
`setting_label`; the per-example worst case over attacks is a line and rows of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench import defaults
from bench.metrics.robustness import format_setting, is_unset
from bench.metrics.worst_case import WORST_CASE
from bench.report.blocks import Figure, Section, Table, Text, figure_png, subplots
from bench.store import schema as S
from bench.suite.attack_options import DEFAULT_IMPLEMENTATION, SETTING_KEYS

# Colour by model; within a model, each setting its own line style and marker.
LINE_STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "v", "D", "x", "P"]
# Settings left out of a label at their default (docs/suites.md documents them); `steps`
# is always shown: "pgd(steps=10)" is the PGD-10 of the papers.
LABEL_DEFAULTS = {"norm": defaults.NORM, "random_start": True, "restarts": defaults.RESTARTS,
                  "loss": defaults.PGD_LOSS, "version": defaults.AUTOATTACK_VERSION,
                  "queries": defaults.SQUARE_QUERIES, "implementation": DEFAULT_IMPLEMENTATION}
# Columns that keep two lines apart (the aggregate's group columns, ε aside).
LINE_KEYS = ["model", "dataset", "split", "attack", *SETTING_KEYS, "limit", "batch_size",
             "data_fingerprint", "n"]
TABLE_COLUMNS = ["model", "dataset", "setting", "epsilon", "n", "n_seeds", "clean_acc_mean",
                 "robust_acc_mean", "robust_acc_ci_low", "robust_acc_ci_high",
                 "robust_acc_binom_low", "robust_acc_binom_high", "adv_acc_mean",
                 "attack_success_rate_mean"]


def sections(run, baseline) -> list[Section]:
    agg = run.table(S.ROBUSTNESS_AGG)
    if agg.empty:
        return []
    agg = labelled(agg)
    blocks = [Text(
        "`robust_acc`: right both clean and under attack (RobustBench's count, never above "
        "clean accuracy); `adv_acc`: right under attack whatever the clean prediction. Mean over "
        "seeds, with two 95% intervals: over seeds (`_ci_`, Student t; the band in the plot) and "
        "over the `n` examples (`_binom_`, Wilson, averaged over seeds; the bars in the plot). "
        "Each attack setting is its own line and row. *worst case*: an example counts only if "
        "it survives every attack run on it (at that ε or a smaller one). Inputs are in [0, 1]; "
        "ε is in the units of the threat model's norm.")]
    blocks.append(Figure("robustness_accuracy_vs_epsilon", accuracy_vs_epsilon_png(agg),
                         "Accuracy against ε"))
    blocks.append(Table(agg[[c for c in TABLE_COLUMNS if c in agg.columns]],
                        "Robustness over seeds"))
    worst = agg[agg["attack"] == WORST_CASE] if "attacks" in agg.columns else agg.iloc[0:0]
    if not worst.empty:
        cols = ["model", "dataset", "epsilon", "n", "robust_acc_mean", "attacks"]
        blocks.append(Table(worst[cols], "Worst case per example: the attacks it is taken over"))
    # Sanity checks (sections/checks.py) and catastrophic overfitting (sections/training.py)
    # have their own sections.
    return [Section("Robustness", blocks)]


def setting_label(row: pd.Series) -> str:
    """"pgd(steps=10)", "autoattack(steps=100, version=plus)", "worst case": the attack and
    its settings, those at their default (LABEL_DEFAULTS) left out."""
    if row["attack"] == WORST_CASE:
        return "worst case"
    shown = [f"{k}={format_setting(row[k])}" for k in SETTING_KEYS if k in row.index
             and not is_unset(row[k]) and row[k] != LABEL_DEFAULTS.get(k, object())]
    return f"{row['attack']}({', '.join(shown)})" if shown else str(row["attack"])


def labelled(agg: pd.DataFrame) -> pd.DataFrame:
    """The aggregate with a `setting` label column, ordered by model, setting and ε (worst
    case last)."""
    out = agg.assign(setting=[setting_label(r) for _, r in agg.iterrows()])
    out = out.assign(_last=out["attack"] == WORST_CASE)
    order = [c for c in ("model", "dataset", "split", "_last", "attack", *SETTING_KEYS, "n",
                         "epsilon") if c in out.columns]
    return out.sort_values(order, kind="stable").drop(columns="_last").reset_index(drop=True)


@dataclass
class Line:
    panel: tuple  # (dataset, split, norm)
    label: str
    model: str
    attack: str
    points: pd.DataFrame  # the aggregate's rows of this line, by ε


def plot_lines(agg: pd.DataFrame) -> list[Line]:
    """One line per model and attack setting (and data, when several subsets were
    evaluated): two settings of one attack never share a line."""
    agg = agg if "setting" in agg.columns else labelled(agg)
    agg = agg.assign(norm=agg["norm"].fillna(defaults.NORM) if "norm" in agg else defaults.NORM)
    keys = [k for k in LINE_KEYS if k in agg.columns]
    lines = []
    for _, g in agg.groupby(keys, sort=False, dropna=False):
        first = g.iloc[0]
        lines.append(Line((first["dataset"], first["split"], first["norm"]),
                          f"{first['model']} / {first['setting']}", first["model"],
                          first["attack"], g.sort_values("epsilon")))
    for panel in {line.panel for line in lines}:
        _disambiguate([line for line in lines if line.panel == panel])
    return lines


def _disambiguate(lines: list[Line]) -> None:
    """Lines of one panel with the same label differ in their data or batch: say how."""
    for label in {line.label for line in lines}:
        same = [line for line in lines if line.label == label]
        if len(same) > 1:
            for line in same:
                first = line.points.iloc[0]
                batch = f", batch {first['batch_size']:g}" if "batch_size" in first and \
                    not is_unset(first["batch_size"]) else ""
                line.label = f"{label} (n={first.get('n', '?')}{batch})"


def accuracy_vs_epsilon_png(agg: pd.DataFrame) -> bytes:
    lines = plot_lines(agg)
    panels = sorted({line.panel for line in lines}, key=str)
    fig, axes = subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    colors = {m: f"C{i}" for i, m in enumerate(sorted({line.model for line in lines}))}
    for ax, panel in zip(axes[0], panels):
        seen: dict[str, int] = {}
        for line in (ln for ln in lines if ln.panel == panel):
            g, color = line.points, colors[line.model]
            i = seen[line.model] = seen.get(line.model, -1) + 1
            worst = line.attack == WORST_CASE
            ax.plot(g["epsilon"], g["robust_acc_mean"], "-" if worst else
                    LINE_STYLES[i % len(LINE_STYLES)], marker=MARKERS[i % len(MARKERS)], ms=3.5,
                    color=color, lw=2.4 if worst else 1.2, label=line.label)
            if "robust_acc_binom_low" in g and g["robust_acc_binom_low"].notna().any():
                ax.vlines(g["epsilon"], g["robust_acc_binom_low"], g["robust_acc_binom_high"],
                          color=color, lw=0.8, alpha=0.6)
            if g["robust_acc_ci_low"].notna().any():
                ax.fill_between(g["epsilon"], g["robust_acc_ci_low"].clip(0, 1),
                                g["robust_acc_ci_high"].clip(0, 1), color=color, alpha=0.12)
        dataset, split, norm = panel
        unit = "L2 norm" if norm == "l2" else "L∞, pixel units"
        ax.set(title=f"{dataset} ({split}, {norm})", xlabel=f"ε ({unit})",
               ylabel="robust accuracy", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return figure_png(fig)
