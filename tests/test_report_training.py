"""The report's training section: kept epochs and catastrophic-overfitting flags."""

import math

import pandas as pd

from bench.report import write_report
from bench.report.sections.training import epoch_ranges, model_row
from tests.helpers.runs import make_cell, make_run, robustness_cells


def train_cell(model: str, seed: int, flagged: set[int], kept: int, epochs: int = 5):
    rows = [{"model": model, "arch": "small-cnn", "recipe": "fgsm-rs", "dataset": "digits",
             "seed": seed, "epsilon": 0.3, "epoch": e, "train_loss": 1.0, "train_acc": 0.6,
             "heldout_clean_acc": 0.9, "heldout_pgd_acc": 0.0 if e in flagged else 0.1 * e,
             "catastrophic_overfit": e in flagged, "kept": e == kept, "seconds": 1.0}
            for e in range(1, epochs + 1)]
    return make_cell("train", {"model": model, "seed": seed}, {"training": rows},
                     f"train {model} seed={seed}")


def test_training_section_shows_flags_and_kept_epochs(tmp_path):
    cells = robustness_cells() + [train_cell("fgsm", 0, {3, 4, 5}, kept=5),
                                  train_cell("fgsm-rs", 0, set(), kept=4)]
    run = make_run(tmp_path / "run", cells)
    write_report(run)
    md = (run / "report.md").read_text()
    section = md.split("## Training", 1)[1].split("\n## ", 1)[0]
    assert "catastrophic overfitting in fgsm (seed 0), epochs 3–5; epoch 5 kept" in section
    assert "catastrophic overfitting in fgsm-rs" not in md
    assert "| fgsm-rs | 0 | fgsm-rs | 0.3 | 5 | 4 | 0.9 | 0.4 |  |" in section
    assert "| fgsm | 0 | fgsm-rs | 0.3 | 5 | 5 | 0.9 | 0 | 3–5 |" in section
    html = (run / "report.html").read_text()
    assert html.count("catastrophic overfitting in fgsm (seed 0)") == 1


def test_rows_from_before_kept_existed_show_the_last_epoch():
    history = pd.DataFrame({"model": "m", "seed": 0, "recipe": "standard", "epsilon": math.nan,
                            "epoch": [1, 2], "heldout_clean_acc": [0.5, 0.8],
                            "heldout_pgd_acc": math.nan, "catastrophic_overfit": False})
    row = model_row(history)
    assert (row["kept_epoch"], row["heldout_clean_acc"], row["overfit_epochs"]) == (2, 0.8, "")


def test_epoch_ranges():
    assert epoch_ranges([]) == ""
    assert epoch_ranges([7, 3, 5, 6]) == "3, 5–7"
