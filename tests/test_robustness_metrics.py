"""robustness_row on hand-made predictions (the sanity checks over its rows: tests/test_checks_*)."""

import math

import pytest
import torch

from bench.metrics.robustness import robustness_row


def test_robustness_row_known_answers():
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    clean = torch.tensor([0, 1, 2, 3, 4, 5, 0, 0])  # 6 of 8 right
    adv = torch.tensor([0, 1, 9, 9, 9, 5, 6, 0])  # 4 right; 3 of the 6 flipped; one fixed by luck
    linf = torch.tensor([0.1, 0.1, 0.1, 0.05, 0.1, 0.0, 0.1, 0.1])
    row = robustness_row(y, clean, adv, linf, epsilon=0.1)
    point = {k: v for k, v in row.items() if "_binom_" not in k}
    assert point == {
        "n": 8,
        "n_clean_correct": 6,
        "clean_acc": 0.75,
        "robust_acc": 0.375,  # 0, 1 and 5: right clean and attacked; 6 was wrong clean
        "adv_acc": 0.5,  # 0, 1, 5 and the lucky 6
        "acc_drop": 0.375,
        "relative_drop": pytest.approx(0.5),
        "attack_success_rate": 0.5,
        "linf_mean": pytest.approx(0.08125, abs=1e-7),
        "linf_max": pytest.approx(0.1),
        "linf_ok": True,
        "within_epsilon": True,
    }
    # Wilson 95% for 3 of 8, worked by hand: centre 0.4157, half-width 0.2787.
    assert row["robust_acc_binom_low"] == pytest.approx(0.1370, abs=2e-4)
    assert row["robust_acc_binom_high"] == pytest.approx(0.6944, abs=2e-4)
    for name in ("clean_acc", "robust_acc", "adv_acc", "attack_success_rate"):
        assert row[f"{name}_binom_low"] < row[name] < row[f"{name}_binom_high"], name
    bad = robustness_row(y, clean, adv, linf + 0.01, epsilon=0.1)
    assert not bad["linf_ok"] and not bad["within_epsilon"]


def test_a_sample_the_attack_makes_correct_is_not_robust():
    """Wrong clean, right attacked: it counts in adv_acc, never in robust_acc."""
    y = torch.tensor([3, 3])
    row = robustness_row(y, torch.tensor([1, 3]), torch.tensor([3, 3]), torch.zeros(2), 0.1)
    assert row["adv_acc"] == 1.0
    assert row["robust_acc"] == 0.5 == row["clean_acc"]
    assert row["attack_success_rate"] == 0.0 and row["acc_drop"] == 0.0


def test_l2_rows_check_the_size_in_l2():
    y = torch.tensor([0, 1])
    linf, l2 = torch.tensor([0.1, 0.2]), torch.tensor([1.4, 1.5])
    row = robustness_row(y, y, y, linf, 1.5, l2=l2, norm="l2")
    assert row["within_epsilon"] and row["l2_max"] == pytest.approx(1.5)
    assert not robustness_row(y, y, y, linf, 1.49, l2=l2, norm="l2")["within_epsilon"]
    with pytest.raises(ValueError, match="l2"):
        robustness_row(y, y, y, linf, 1.5, norm="l2")


def test_robustness_row_when_nothing_is_right():
    y = torch.tensor([1, 1])
    row = robustness_row(y, torch.tensor([0, 0]), torch.tensor([0, 0]), torch.zeros(2), 0.0)
    assert row["clean_acc"] == 0.0 and row["robust_acc"] == 0.0
    assert math.isnan(row["relative_drop"]) and math.isnan(row["attack_success_rate"])
