"""Training: per trained model and seed, the epoch whose weights were kept and the epochs the
catastrophic-overfitting watch flagged (bench.training.overfit)."""

from __future__ import annotations

import pandas as pd

from bench.report.blocks import Section, Table, Text, Warning_
from bench.store import schema as S

COLUMNS = ["model", "seed", "recipe", "epsilon", "epochs", "kept_epoch", "heldout_clean_acc",
           "heldout_pgd_acc", "overfit_epochs"]


def sections(run, baseline) -> list[Section]:
    training = run.table(S.TRAINING)
    if training.empty:
        return []
    rows = [model_row(g) for _, g in training.groupby(["model", "seed"], sort=True)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    blocks = [Text(
        "Held-out accuracies are those of the kept epoch, on a slice of the train split never "
        "trained on (PGD-10 on up to 256 of its samples, adversarial recipes only). An epoch is "
        "flagged for catastrophic overfitting when accuracy on the training perturbations is "
        "high while held-out PGD accuracy has collapsed (Wong et al. 2020); FGSM-RS keeps its "
        "best-PGD unflagged epoch.")]
    blocks += [Warning_(f"catastrophic overfitting in {r.model} (seed {r.seed}), epochs "
                        f"{r.overfit_epochs}; epoch {r.kept_epoch} kept")
               for r in df[df["overfit_epochs"] != ""].itertuples()]
    blocks.append(Table(df, "Training per model and seed", highlight_column="overfit_epochs"))
    return [Section("Training", blocks)]


def model_row(history: pd.DataFrame) -> dict:
    """One model and seed's summary; runs recorded before `kept` existed kept the last epoch."""
    g = history.sort_values("epoch")
    kept = g[g["kept"].eq(True)] if "kept" in g else g.tail(0)
    row = (kept if len(kept) else g).iloc[-1]
    flagged = g.loc[g["catastrophic_overfit"].eq(True), "epoch"].astype(int).tolist()
    return {"model": row["model"], "seed": int(row["seed"]), "recipe": row["recipe"],
            "epsilon": row["epsilon"], "epochs": int(g["epoch"].max()),
            "kept_epoch": int(row["epoch"]), "heldout_clean_acc": row["heldout_clean_acc"],
            "heldout_pgd_acc": row["heldout_pgd_acc"], "overfit_epochs": epoch_ranges(flagged)}


def epoch_ranges(epochs: list[int]) -> str:
    """[3, 5, 6, 7] -> "3, 5–7"; [] -> ""."""
    runs: list[list[int]] = []  # [first, last] of each run of consecutive epochs
    for e in sorted(epochs):
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
