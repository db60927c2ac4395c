"""Per-example worst case over attacks, and the compact correctness storage it reads."""

import numpy as np
import pandas as pd
import pytest
import torch

from bench.attacks import ATTACKS, predict
from bench.metrics.robustness import robustness_row
from bench.metrics.worst_case import WORST_CASE, worst_case, worst_case_table
from bench.store.correctness import correctness_record, pack_bits, unpack_bits


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000])
def test_bits_round_trip(n):
    mask = np.random.default_rng(n).random(n) > 0.5
    text = pack_bits(mask)
    assert isinstance(text, str) and len(text) <= 4 * ((n + 7) // 8 + 2) // 3 + 4
    assert np.array_equal(unpack_bits(text, n), mask)
    assert np.array_equal(unpack_bits(pack_bits(torch.from_numpy(mask)), n), mask)


def test_unpacking_with_the_wrong_count_fails():
    with pytest.raises(ValueError, match="cannot hold exactly 17"):
        unpack_bits(pack_bits(np.ones(8, dtype=bool)), 17)


def test_a_sample_made_correct_by_every_attack_is_not_robust():
    clean = np.array([True, True, False, True])
    row = worst_case(clean, {"fgsm": np.array([True, False, True, True]),
                             "pgd": np.array([True, True, True, False])})
    # Example 2 is right under both attacks but wrong clean: not robust. 1 and 3 fall to one.
    assert row["robust_acc"] == 0.25 and row["adv_acc"] == 0.5
    assert row["attacks"] == "fgsm; pgd" and row["n_attacks"] == 2


@pytest.fixture(scope="module")
def correctness(digits_mlp):
    """Correctness rows of three attacks on one model, as a cell would store them."""
    model, x, y = digits_mlp
    x, y = x[:60], y[:60]
    clean = predict(model, x, 60, "cpu")
    rows, robust = [], {}
    for attack, params in (("fgsm", {}), ("pgd", {"steps": 5}), ("apgd-ce", {"steps": 5})):
        for res in ATTACKS.get(attack)(model, x, y, [0.04, 0.08], 30, "cpu", seed=2, **params):
            ident = {"model": "mlp", "data_fingerprint": "abc", "seed": 0, "norm": "linf",
                     "attack": attack, "steps": params.get("steps"), "epsilon": res.epsilon}
            rows.append(ident | correctness_record(clean == y, res.adv_correct))
            robust[attack, res.epsilon] = robustness_row(y, clean, res.adv_pred, res.linf,
                                                         res.epsilon)["robust_acc"]
    return pd.DataFrame(rows), robust


def test_worst_case_is_at_most_every_attack_per_epsilon(correctness):
    table, robust = correctness
    worst = worst_case_table(table, nested=False)
    assert list(worst["epsilon"]) == [0.04, 0.08] and set(worst["attack"]) == {WORST_CASE}
    for r in worst.itertuples():
        per_attack = [acc for (attack, eps), acc in robust.items() if eps == r.epsilon]
        assert r.robust_acc <= min(per_attack)
        assert r.attacks == "apgd-ce(steps=5); fgsm; pgd(steps=5)"
    # Not vacuous: at 0.08 the attacks break different examples, so the worst case is lower
    # than the strongest single attack (0.233 against PGD's and APGD-CE's 0.25 here).
    assert worst["robust_acc"].iloc[1] < min(acc for (a, e), acc in robust.items() if e == 0.08)


def test_successes_at_a_smaller_epsilon_count_at_larger_ones(correctness):
    table, _ = correctness
    flat = worst_case_table(table, nested=False).set_index("epsilon")["robust_acc"]
    nested = worst_case_table(table).set_index("epsilon")["robust_acc"]
    assert nested[0.04] == flat[0.04] and nested[0.08] <= flat[0.08]
    # Built to differ: an example broken only at the small ε still falls at the large one.
    clean = np.array([True, True])
    rows = pd.DataFrame([
        {"model": "m", "seed": 0, "attack": "fgsm", "epsilon": 0.1,
         **correctness_record(torch.tensor(clean), torch.tensor([False, True]))},
        {"model": "m", "seed": 0, "attack": "pgd", "epsilon": 0.2,
         **correctness_record(torch.tensor(clean), torch.tensor([True, False]))}])
    assert list(worst_case_table(rows)["robust_acc"]) == [0.5, 0.0]
    assert list(worst_case_table(rows, nested=False)["robust_acc"]) == [0.5, 0.5]


def test_worst_case_across_runs_equals_one_table(correctness, tmp_path):
    """Rows from two runs (through Parquet, as stored) combine to the same worst case; rows
    of other data or another seed stay in their own groups."""
    table, _ = correctness
    one = worst_case_table(table)
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    table.iloc[::2].to_parquet(paths[0])
    table.iloc[1::2].to_parquet(paths[1])
    both = worst_case_table(pd.concat([pd.read_parquet(p) for p in paths]))
    pd.testing.assert_frame_equal(one, both)
    other = table.assign(data_fingerprint="def", seed=1)
    assert len(worst_case_table(pd.concat([table, other]))) == 2 * len(one)


def test_clean_passes_that_disagree_count_an_example_clean_only_if_every_pass_did(correctness):
    """Two clean passes of one model on the same examples, in other batches, may differ by a
    kernel-rounding argmax flip: the example then counts as wrong clean, and is counted."""
    table, _ = correctness
    first = table.iloc[0]
    clean = unpack_bits(first["clean_correct"], 60)
    assert clean[:5].all()  # the flipped examples were right in every other pass
    flipped = clean.copy()
    flipped[:5] = False
    broken = table.copy()
    broken.loc[0, "clean_correct"] = pack_bits(flipped)
    worst, sound = worst_case_table(broken), worst_case_table(table)
    assert set(worst["clean_disagreements"]) == {5} and set(sound["clean_disagreements"]) == {0}
    assert (worst["clean_acc"] == sound["clean_acc"] - 5 / 60).all()
    assert (worst["robust_acc"] <= sound["robust_acc"]).all()
