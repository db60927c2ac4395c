"""`implementation_cross_check` (bench.checks.table): the original AutoAttack code against
torchattacks on the same model, examples and ε. It fails on rows built to disagree beyond
chance, passes on rows that differ by chance only, and pairs only the same attack and
settings at the same ε. No extra needed: these are correctness rows, not attacks."""

import numpy as np
import pandas as pd
import pytest
import torch

from bench.checks.paired import mcnemar_two_sided
from bench.checks.table import correctness_checks
from bench.store.correctness import correctness_record

N = 300
CHECK = "implementation_cross_check"


def row(attack, epsilon, clean, adv, implementation, **settings) -> dict:
    ident = {"model": "m", "dataset": "digits", "split": "test", "data_fingerprint": "fp",
             "seed": 0, "norm": "linf", "attack": attack, "epsilon": epsilon,
             "steps": settings.get("steps", 10), "version": settings.get("version"),
             "implementation": implementation}
    return ident | correctness_record(torch.as_tensor(clean), torch.as_tensor(adv))


def robust_sets(rng, flip_a: int, flip_b: int):
    """Clean all right; torchattacks' robust set, and the reference's differing from it on
    `flip_a` examples it breaks more and `flip_b` it breaks fewer."""
    clean = np.ones(N, dtype=bool)
    ta = rng.random(N) < 0.5
    ref = ta.copy()
    robust, broken = np.flatnonzero(ta), np.flatnonzero(~ta)
    ref[robust[:flip_a]] = False
    ref[broken[:flip_b]] = True
    return clean, ta, ref


def checks_of(rows) -> list[dict]:
    return [r for r in correctness_checks(pd.DataFrame(rows)) if r["check"] == CHECK]


def test_two_sided_mcnemar_known_answer():
    a = np.array([True] * 10 + [False] * 1 + [True] * 89)
    b = np.array([False] * 10 + [True] * 1 + [True] * 89)
    test = mcnemar_two_sided(a, b)
    assert (test.only_a, test.only_b, test.two_sided) == (10, 1, True)
    assert test.p_value == pytest.approx(2 * 12 / 2048)  # both tails of Binomial(11, 1/2)
    assert mcnemar_two_sided(b, a).p_value == pytest.approx(test.p_value)  # symmetric
    assert mcnemar_two_sided(a, a).p_value == 1.0


def test_a_reference_that_breaks_many_more_examples_fails_the_check():
    clean, ta, ref = robust_sets(np.random.default_rng(0), flip_a=30, flip_b=2)
    (check,) = checks_of([row("autoattack", 0.1, clean, ta, "torchattacks", version="standard"),
                          row("autoattack", 0.1, clean, ref, "reference", version="standard")])
    assert not check["passed"] and check["p_value"] < 0.01
    assert check["value"] == pytest.approx(-28 / N)  # reference minus torchattacks
    assert check["setting"] == "steps=10, version=standard, implementation=reference"
    assert "2 of 300 examples right under the reference only, 30 under torchattacks only" \
        in check["detail"]
    assert "disagree beyond chance" in check["detail"]


def test_a_torchattacks_that_breaks_many_more_fails_too():
    clean, ta, ref = robust_sets(np.random.default_rng(1), flip_a=0, flip_b=25)
    (check,) = checks_of([row("apgd-ce", 0.1, clean, ta, "torchattacks"),
                          row("apgd-ce", 0.1, clean, ref, "reference")])
    assert not check["passed"]


def test_differences_within_chance_pass():
    clean, ta, ref = robust_sets(np.random.default_rng(2), flip_a=4, flip_b=2)
    (check,) = checks_of([row("apgd-ce", 0.1, clean, ta, "torchattacks"),
                          row("apgd-ce", 0.1, clean, ref, "reference")])
    assert check["passed"] and check["p_value"] > 0.5
    assert "2 of 300 examples right under the reference only, 4 under torchattacks only" \
        in check["detail"]


def test_only_the_same_attack_settings_and_epsilon_are_paired():
    clean, ta, ref = robust_sets(np.random.default_rng(3), flip_a=40, flip_b=0)
    rows = [row("apgd-ce", 0.1, clean, ta, "torchattacks", steps=100),  # other steps
            row("apgd-ce", 0.2, clean, ta, "torchattacks"),  # other ε
            row("apgd-t", 0.1, clean, ta, "torchattacks"),  # other attack
            row("apgd-ce", 0.1, clean, ref, "reference")]
    assert checks_of(rows) == []
    twin = row("apgd-ce", 0.1, clean, ta, "torchattacks")
    assert [c["passed"] for c in checks_of(rows + [twin])] == [False]


def test_no_check_without_a_reference_row_and_rows_of_older_runs_read_as_torchattacks():
    clean, ta, _ = robust_sets(np.random.default_rng(4), 0, 0)
    old = {k: v for k, v in row("autoattack", 0.1, clean, ta, "torchattacks").items()
           if k != "implementation"}
    assert checks_of([old, old | {"steps": 100}]) == []
