"""robustness_row on hand-made predictions, and the Carlini et al. sanity checks."""

import math

import pandas as pd
import pytest
import torch

from bench.metrics.robustness import robustness_row, sanity_checks


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


def table(rows):
    base = {"model": "cnn", "seed": 0, "clean_acc": 0.9, "n": 1000, "zero_grad_frac": 0.01,
            "eval_mode": True, "linf_ok": True, "dataset": "digits", "split": "test"}
    return pd.DataFrame([base | r for r in rows])


def failed(checks):
    return {(c["check"], c["attack"], c["epsilon"]) for c in checks if not c["passed"]}


def test_a_consistent_table_passes_every_check():
    df = table([
        {"attack": "fgsm", "epsilon": 0.0, "robust_acc": 0.9},
        {"attack": "fgsm", "epsilon": 0.1, "robust_acc": 0.5},
        {"attack": "fgsm", "epsilon": 0.2, "robust_acc": 0.51},  # within noise
        {"attack": "pgd", "epsilon": 0.1, "robust_acc": 0.4},
        {"attack": "pgd", "epsilon": 0.2, "robust_acc": 0.3},
    ])
    checks = sanity_checks(df)
    assert failed(checks) == set()
    assert {c["check"] for c in checks} == {
        "accuracy_non_increasing_in_epsilon", "zero_epsilon_is_clean", "eval_mode",
        "zero_gradients", "linf_within_epsilon", "pgd_not_weaker_than_fgsm"}
    for c in checks:
        assert set(c) == {"check", "model", "attack", "epsilon", "seed", "passed", "value",
                          "detail"}
        assert c["detail"].endswith(".") and "\n" not in c["detail"]


def test_flags_accuracy_rising_with_epsilon_and_pgd_weaker_than_fgsm():
    df = table([
        {"attack": "fgsm", "epsilon": 0.1, "robust_acc": 0.2},
        {"attack": "fgsm", "epsilon": 0.2, "robust_acc": 0.6},  # rises by 0.4 >> 2 SE (~0.03)
        {"attack": "pgd", "epsilon": 0.1, "robust_acc": 0.5},  # PGD weaker than FGSM by 0.3
        {"attack": "pgd", "epsilon": 0.2, "robust_acc": 0.1},
    ])
    checks = sanity_checks(df)
    assert failed(checks) == {("accuracy_non_increasing_in_epsilon", "fgsm", 0.2),
                              ("pgd_not_weaker_than_fgsm", "pgd", 0.1)}
    rise = next(c for c in checks if not c["passed"] and c["attack"] == "fgsm")
    assert rise["value"] == pytest.approx(0.4) and "failing at large ε" in rise["detail"]


def test_flags_train_mode_many_zero_gradients_and_a_bad_zero_epsilon():
    df = table([
        {"attack": "fgsm", "epsilon": 0.0, "robust_acc": 0.8, "eval_mode": False,
         "zero_grad_frac": 0.9},
        {"attack": "fgsm", "epsilon": 0.1, "robust_acc": 0.5},
    ])
    assert failed(sanity_checks(df)) == {("eval_mode", "fgsm", None),
                                         ("zero_gradients", "fgsm", None),
                                         ("zero_epsilon_is_clean", "fgsm", 0.0)}


def test_noise_threshold_scales_with_the_sample_count():
    rows = [{"attack": "fgsm", "epsilon": 0.1, "robust_acc": 0.50},
            {"attack": "fgsm", "epsilon": 0.2, "robust_acc": 0.54}]
    small, large = table(rows).assign(n=100), table(rows).assign(n=10_000)
    assert failed(sanity_checks(small)) == set()  # 0.04 < 2·sqrt(.25/100) = 0.1
    assert failed(sanity_checks(large)) == {("accuracy_non_increasing_in_epsilon", "fgsm", 0.2)}


def test_empty_table_gives_no_checks():
    assert sanity_checks(pd.DataFrame()) == []


def test_two_pgd_settings_are_checked_apart():
    """PGD-10 at 0.40 and PGD-100 at 0.30 at the same ε: pooled, the check would compare one
    with the other; kept apart, each setting is monotone and held against FGSM on its own."""
    df = table([
        {"attack": "fgsm", "epsilon": 0.1, "robust_acc": 0.5},
        {"attack": "fgsm", "epsilon": 0.2, "robust_acc": 0.45},
        {"attack": "pgd", "steps": 10, "epsilon": 0.1, "robust_acc": 0.30},
        {"attack": "pgd", "steps": 10, "epsilon": 0.2, "robust_acc": 0.40},  # rises: flagged
        {"attack": "pgd", "steps": 100, "epsilon": 0.1, "robust_acc": 0.28},
        {"attack": "pgd", "steps": 100, "epsilon": 0.2, "robust_acc": 0.25},
    ])
    checks = sanity_checks(df)
    monotone = [c for c in checks if c["check"] == "accuracy_non_increasing_in_epsilon"
                and c["attack"] == "pgd"]
    assert len(monotone) == 2  # one per setting, not 3 over a pooled, ε-sorted group
    flagged = [c for c in monotone if not c["passed"]]
    assert len(flagged) == 1 and "steps 10" in flagged[0]["detail"]
    assert sum(c["check"] == "pgd_not_weaker_than_fgsm" for c in checks) == 4
    assert {c["detail"].split(":")[0] for c in checks if c["check"] == "eval_mode"} == {
        "cnn/fgsm seed 0, dataset digits, split test",
        "cnn/pgd seed 0, dataset digits, split test, steps 10",
        "cnn/pgd seed 0, dataset digits, split test, steps 100"}


def test_the_size_check_reads_within_epsilon_when_the_table_has_it():
    df = table([{"attack": "pgd", "norm": "l2", "epsilon": 2.0, "robust_acc": 0.5,
                 "linf_ok": True, "within_epsilon": False}])
    assert ("linf_within_epsilon", "pgd", None) in failed(sanity_checks(df))
