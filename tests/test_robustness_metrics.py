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
    assert row == {
        "n": 8,
        "clean_acc": 0.75,
        "robust_acc": 0.5,
        "acc_drop": 0.25,
        "relative_drop": pytest.approx(1 / 3),
        "attack_success_rate": 0.5,
        "linf_mean": pytest.approx(0.08125, abs=1e-7),
        "linf_max": pytest.approx(0.1),
        "linf_ok": True,
    }
    assert not robustness_row(y, clean, adv, linf + 0.01, epsilon=0.1)["linf_ok"]


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
