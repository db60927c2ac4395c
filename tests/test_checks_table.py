"""The paired checks over per-example correctness (bench.checks.table, bench.checks.paired):
each fires on a table (or a model) built to trip it and stays silent on a sound one."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench.attacks import ATTACKS, predict
from bench.checks.paired import mcnemar_greater
from bench.checks.table import correctness_checks
from bench.data import seeded_indices
from bench.metrics.robustness import robustness_row
from bench.store import schema as S
from bench.store.correctness import correctness_record, subset_record
from tests.helpers import broken_models as B

N = 200


def record(model, attack, epsilon, clean, adv, **settings) -> dict:
    ident = {"model": model, "dataset": "digits", "split": "test", "data_fingerprint": "fp",
             "seed": 0, "norm": "linf", "attack": attack, "epsilon": epsilon,
             "steps": settings.get("steps"), "queries": settings.get("queries")}
    return ident | correctness_record(torch.as_tensor(clean), torch.as_tensor(adv))


def evaluated(model, x, y, runs, name="m") -> pd.DataFrame:
    """Correctness rows of `runs` [(attack, ε list, params)] on `model`, as a cell stores them."""
    clean = predict(model, x, 512, "cpu") == y
    rows = []
    for attack, epsilons, params in runs:
        for res in ATTACKS.get(attack)(model, x, y, epsilons, 512, "cpu", seed=0, **params):
            rows.append(record(name, attack, res.epsilon, clean, res.adv_correct, **params))
    return pd.DataFrame(rows)


def failed(rows):
    return {(r["check"], r["attack"], r["epsilon"]) for r in rows if not r["passed"]}


@pytest.fixture(scope="module")
def mlp(digits_mlp):
    model, x, y = digits_mlp
    return model, x[:N], y[:N]


# -- McNemar ----------------------------------------------------------------------------------

def test_mcnemar_known_answer():
    a = np.array([True] * 10 + [False] * 1 + [True] * 50 + [False] * 39)
    b = np.array([False] * 10 + [True] * 1 + [True] * 50 + [False] * 39)
    test = mcnemar_greater(a, b)
    assert (test.n, test.only_a, test.only_b) == (100, 10, 1)
    assert test.p_value == pytest.approx(12 / 2048)  # P(X >= 10), X ~ Binomial(11, 1/2)
    assert test.difference == pytest.approx(0.09)
    assert mcnemar_greater(b, a).p_value == pytest.approx(1 - 1 / 2048)
    assert mcnemar_greater(a, a).p_value == 1.0  # no discordant pair, no evidence
    with pytest.raises(ValueError, match="not the same"):
        mcnemar_greater(a, a[:50])


def paired_rows(n, acc_small, only_large, only_small):
    """Correctness at ε = 0.1 and 0.2 over n examples, all right clean: `only_large` examples
    right only at 0.2 and `only_small` right only at 0.1."""
    small = np.zeros(n, bool)
    small[:int(acc_small * n)] = True
    large = small.copy()
    large[:only_small] = False
    large[-only_large:] = True
    clean = np.ones(n, bool)
    return pd.DataFrame([record("m", "fgsm", 0.1, clean, small),
                         record("m", "fgsm", 0.2, clean, large)])


def unpaired_rise(acc_small: float, acc_large: float, n: int) -> bool:
    """The rule these checks replaced: a rise beyond 2 binomial SE at the pooled accuracy,
    as if the two accuracies came from different examples."""
    p = (acc_small + acc_large) / 2
    return acc_large - acc_small > 2 * math.sqrt(p * (1 - p) / n)


def test_paired_monotonicity_fires_where_the_unpaired_rule_is_blind():
    """30 of 1000 examples survive only the larger ε, none the reverse: 0.50 -> 0.53 is
    within 2 SE (0.032) unpaired, but no chance result paired (p = 2^-30)."""
    df = paired_rows(1000, 0.5, only_large=30, only_small=0)
    (row,) = [r for r in correctness_checks(df) if r["epsilon"] == 0.2]
    assert row["check"] == "accuracy_non_increasing_in_epsilon" and not row["passed"]
    assert row["p_value"] == pytest.approx(2.0 ** -30)
    assert row["value"] == pytest.approx(0.03) and "failing at large ε" in row["detail"]
    assert not unpaired_rise(0.50, 0.53, 1000)


def test_paired_monotonicity_is_silent_when_examples_merely_trade_places():
    """220 examples right only at 0.2 and 180 only at 0.1: 0.04 up, beyond 2 SE unpaired,
    but discordant pairs falling 220:180 is within chance (p ≈ 0.025 > α = 0.01)."""
    df = paired_rows(1000, 0.5, only_large=220, only_small=180)
    (row,) = [r for r in correctness_checks(df) if r["epsilon"] == 0.2]
    assert row["passed"] and 0.01 < row["p_value"] < 0.05, row["detail"]
    assert unpaired_rise(0.50, 0.54, 1000)


# -- on real attacks --------------------------------------------------------------------------

def test_a_sound_model_passes_every_paired_check(mlp):
    model, x, y = mlp
    df = evaluated(model, x, y, [("fgsm", [0.0, 0.05, 0.1, 0.2], {}),
                                 ("pgd", [0.0, 0.05, 0.1], {"steps": 10}),
                                 ("square", [0.05, 0.1], {"queries": 500})])
    rows = correctness_checks(df)
    assert failed(rows) == set(), [r["detail"] for r in rows if not r["passed"]]
    assert {r["check"] for r in rows} == {
        "zero_epsilon_is_clean", "accuracy_non_increasing_in_epsilon",
        "pgd_not_weaker_than_fgsm", "gradient_free_cross_check"}
    for r in rows:
        assert list(r) == list(S.COLUMNS[S.CHECKS]) and r["model"] == "m" and r["seed"] == 0
        assert r["detail"].endswith(".") and "\n" not in r["detail"]
    pgd = [r for r in rows if r["attack"] == "pgd" and r["check"] == "pgd_not_weaker_than_fgsm"]
    assert [r["epsilon"] for r in pgd] == [0.0, 0.05, 0.1] and pgd[0]["setting"] == "steps=10"


def test_pgd_weaker_than_fgsm_fires_on_a_pgd_that_barely_moves(mlp):
    model, x, y = mlp
    df = evaluated(model, x, y, [("fgsm", [0.1], {}),
                                 ("pgd", [0.1], {"steps": 2, "alpha": 0.1 / 20})])
    (row,) = correctness_checks(df)
    assert row["check"] == "pgd_not_weaker_than_fgsm" and not row["passed"]
    assert row["value"] > 0.3 and "too few steps" in row["detail"]


def test_zero_epsilon_fires_on_a_randomized_model_and_excuses_a_kernel_flip(mlp):
    model, x, y = mlp
    df = evaluated(B.NoisyInput(model), x, y, [("fgsm", [0.0], {})])
    (row,) = correctness_checks(df)
    assert row["check"] == "zero_epsilon_is_clean" and not row["passed"] and row["value"] > 10
    clean = np.ones(N, bool)
    one_flip = clean.copy()
    one_flip[7] = False
    (row,) = correctness_checks(pd.DataFrame([record("m", "fgsm", 0.0, clean, one_flip)]))
    assert row["passed"] and row["value"] == 1 and "1 of 200" in row["detail"]
    assert "excused as kernel rounding" in row["detail"]


def test_gradient_free_cross_check_fires_on_masked_gradients(mlp):
    """Logits ×1000: the gradient of most examples is exactly zero, so FGSM and PGD leave
    them alone; Square reads only scores and breaks them as it breaks the plain MLP."""
    model, x, y = mlp
    masked = B.ScaledLogits(model, 1000.0)
    df = evaluated(masked, x, y, [("fgsm", [0.1], {}), ("pgd", [0.1], {"steps": 10}),
                                  ("square", [0.1], {"queries": 500})])
    rows = {r["check"]: r for r in correctness_checks(df)}
    cross = rows["gradient_free_cross_check"]
    assert not cross["passed"] and cross["value"] > 0.3 and cross["p_value"] < 1e-6
    assert "gradients are masked" in cross["detail"] and "fgsm ε=0.1" in cross["detail"]
    assert rows["pgd_not_weaker_than_fgsm"]["passed"]  # both blind: no help from this one


def test_cross_check_holds_a_subset_against_gradient_attacks_on_the_whole_split(mlp):
    """Square on a `limit`ed subset of 60 (as AutoAttack usually runs), FGSM and PGD on all
    200: their rows, restricted to the subset's examples, are what Square is held against;
    they add no checks of their own there (one PGD ≤ FGSM verdict, not two)."""
    model, x, y = mlp
    masked = B.ScaledLogits(model, 1000.0)
    whole = evaluated(masked, x, y, [("fgsm", [0.1], {}), ("pgd", [0.1], {"steps": 10})])
    index = seeded_indices(N, 60, 0)
    part = evaluated(masked, x[index], y[index], [("square", [0.1], {"queries": 500})])
    part["data_fingerprint"] = "fp-subset"
    df = pd.concat([whole.assign(**subset_record(np.arange(N), N)),
                    part.assign(**subset_record(index, N))], ignore_index=True)
    df["split_fingerprint"] = "split"
    rows = correctness_checks(df)
    assert sorted(r["check"] for r in rows) == ["gradient_free_cross_check",
                                                "pgd_not_weaker_than_fgsm"]
    cross = next(r for r in rows if r["check"] == "gradient_free_cross_check")
    assert not cross["passed"] and "60 examples" in cross["detail"]
    assert "fgsm ε=0.1" in cross["detail"] and "pgd(steps=10) ε=0.1" in cross["detail"]


def test_autoattack_beating_pgd_is_no_masking_verdict():
    """AutoAttack's APGD parts are gradient attacks: its beating PGD-10 says PGD-10 is weak
    (the worst-case rows show it), not that gradients are masked, so no cross-check fires."""
    clean = np.ones(N, bool)
    pgd = np.ones(N, bool)
    aa = np.ones(N, bool)
    aa[:20] = False
    rows = correctness_checks(pd.DataFrame([record("m", "pgd", 0.1, clean, pgd, steps=10),
                                            record("m", "autoattack", 0.1, clean, aa)]))
    assert not [r for r in rows if r["check"] == "gradient_free_cross_check"]


def test_groups_of_other_models_seeds_or_data_never_pair():
    clean, right, wrong = np.ones(N, bool), np.ones(N, bool), np.zeros(N, bool)
    df = pd.DataFrame([record("a", "fgsm", 0.1, clean, wrong),
                       record("b", "fgsm", 0.2, clean, right),
                       record("a", "square", 0.1, clean, wrong)])
    df.loc[1, "data_fingerprint"] = "other"
    rows = correctness_checks(df)
    # a: FGSM and Square agree; b: one row, nothing to compare with.
    assert [(r["check"], r["model"], r["passed"]) for r in rows] == [
        ("gradient_free_cross_check", "a", True)]
    assert math.isclose(rows[0]["value"], 0.0)


def test_empty_table_gives_no_checks():
    assert correctness_checks(pd.DataFrame()) == []


def test_rows_match_the_robustness_rows_they_pair(mlp):
    """The accuracies in a detail are the robustness table's robust_acc for the same rows."""
    model, x, y = mlp
    clean = predict(model, x, 512, "cpu")
    (fg,) = ATTACKS.get("fgsm")(model, x, y, [0.1], 512, "cpu")
    (pg,) = ATTACKS.get("pgd")(model, x, y, [0.1], 512, "cpu", steps=10)
    df = pd.DataFrame([record("m", "fgsm", 0.1, clean == y, fg.adv_correct),
                       record("m", "pgd", 0.1, clean == y, pg.adv_correct, steps=10)])
    (row,) = correctness_checks(df)
    for res, name in ((pg, "robust accuracy"), (fg, "FGSM")):
        acc = robustness_row(y, clean, res.adv_pred, res.linf, 0.1)["robust_acc"]
        assert f"{name} {acc:.3f}" in row["detail"]
    assert row["value"] == pytest.approx(
        robustness_row(y, clean, pg.adv_pred, pg.linf, 0.1)["robust_acc"]
        - robustness_row(y, clean, fg.adv_pred, fg.linf, 0.1)["robust_acc"])
