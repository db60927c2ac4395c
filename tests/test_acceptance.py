"""Acceptance numbers on the shipped suites (slow: minutes). Run with `pytest -m slow`.

These are the figures quoted in docs/results.md (its robustness and generative sections).
"""

from pathlib import Path

import pytest

from bench.cli import main
from bench.store import schema as S
from bench.store.correctness import unpack_bits
from bench.store.run_store import RunStore

SUITES = Path(__file__).resolve().parent.parent / "suites"
pytestmark = pytest.mark.slow


def run(suite: str, results: Path) -> RunStore:
    assert main(["run", str(SUITES / suite), "--results-dir", str(results), "--no-progress"]) == 0
    (run_dir,) = [p for p in (results / suite.removesuffix(".toml")).iterdir() if p.is_dir()]
    return RunStore(run_dir)


def at_epsilon(agg, attack: str, epsilon: float):
    return agg[(agg.attack == attack) & (agg.epsilon.round(6) == epsilon)].set_index("model")


def overfit_epochs(store: RunStore) -> dict[tuple[str, int], list[int]]:
    training = store.read_table("training")
    return {key: g.loc[g["catastrophic_overfit"].eq(True), "epoch"].tolist()
            for key, g in training.groupby(["model", "seed"])}


def test_quickstart_robustness_targets(tmp_path):
    store = run("quickstart.toml", tmp_path)
    agg = store.read_table("robustness_agg")
    fgsm, pgd = at_epsilon(agg, "fgsm", 0.2), at_epsilon(agg, "pgd", 0.2)
    print(fgsm[["clean_acc_mean", "robust_acc_mean", "robust_acc_std"]])
    print(pgd[["clean_acc_mean", "robust_acc_mean", "robust_acc_std"]])
    assert fgsm.loc["cnn", "n_seeds"] >= 3
    assert fgsm.loc["cnn", "robust_acc_mean"] <= 0.15
    # PGD, not FGSM: catastrophic overfitting *raises* FGSM accuracy while PGD accuracy collapses.
    assert pgd.loc["cnn-fgsm", "robust_acc_mean"] >= 0.35
    assert pgd.loc["cnn-fgsm", "clean_acc_mean"] >= 0.95
    flags = overfit_epochs(store)
    assert len(flags) == 6 and not any(flags.values()), flags
    assert (store.dir / "report.html").exists()
    attacks_order_on_the_fgsm_rs_model(store)


def attacks_order_on_the_fgsm_rs_model(store: RunStore) -> None:
    """AutoAttack <= PGD-10 <= FGSM on the FGSM-RS model at ε = 0.2: on average over seeds, and
    for each seed on AutoAttack's `limit`ed subset (PGD and FGSM restricted to its examples)."""
    agg = store.read_table("robustness_agg")
    at = agg[(agg.model == "cnn-fgsm") & (agg.epsilon.round(6) == 0.2)].set_index("attack")
    print(at[["n", "n_seeds", "robust_acc_mean", "robust_acc_binom_low", "robust_acc_binom_high"]])
    assert at.loc["autoattack", "n"] == 100 and at.loc["pgd", "n"] == at.loc["fgsm", "n"] == 450
    assert at.loc["autoattack", "robust_acc_mean"] <= at.loc["pgd", "robust_acc_mean"] \
        <= at.loc["fgsm", "robust_acc_mean"]
    rows = store.read_table("correctness")
    rows = rows[(rows.model == "cnn-fgsm") & (rows.epsilon.round(6) == 0.2)]
    for seed, g in rows.groupby("seed"):
        by = g.set_index("attack")
        members = unpack_bits(by.loc["autoattack", "examples"], 450)
        robust = {a: unpack_bits(r["clean_correct"], r["n"])
                  & unpack_bits(r["adv_correct"], r["n"]) for a, r in by.iterrows()}
        on_subset = {a: v[members].mean() if len(v) == 450 else v.mean()
                     for a, v in robust.items()}
        assert on_subset["autoattack"] <= on_subset["pgd"] <= on_subset["fgsm"], (seed, on_subset)


def test_overfit_digits_flags_plain_fgsm_and_not_fgsm_rs(tmp_path):
    store = run("overfit-digits.toml", tmp_path)
    flags = overfit_epochs(store)
    print(flags)
    assert all(flags[("fgsm", seed)] for seed in (0, 1, 2))
    assert not any(flags[("fgsm-rs", seed)] for seed in (0, 1, 2))
    pgd = at_epsilon(store.read_table("robustness_agg"), "pgd", 0.3)
    print(pgd[["clean_acc_mean", "robust_acc_mean", "robust_acc_std"]])
    assert pgd.loc["fgsm", "robust_acc_mean"] <= 0.03  # the collapsed weights (keep = "last")
    assert pgd.loc["fgsm-rs", "robust_acc_mean"] >= 3 * pgd.loc["fgsm", "robust_acc_mean"] + 0.03
    report = (store.dir / "report.md").read_text()
    assert "catastrophic overfitting in fgsm (seed 0)" in report


@pytest.mark.timeout(1800)  # the whole suite: ~13-14 min on 2 quiet cores, over the 600 s default
def test_gan_digits_targets(tmp_path):
    """Issue 15: every reference GAN ends within 3× the real-data floor (mean of 3 seeds)."""
    store = run("gan-digits.toml", tmp_path)
    agg = store.read_table(S.GAN_AGG)
    first = agg[agg.step == 0].set_index("gan")["fid_mean"]
    last = agg.sort_values("step").groupby("gan").tail(1).set_index("gan")
    print(last[["step", "n_seeds", "fid_mean", "fid_std", "real_floor_fid_mean", "precision_mean",
                "recall_mean"]], first)
    assert set(last.index) == {"dcgan", "wgan-gp", "sngan"}
    assert (last["n_seeds"] == 3).all()  # no seed failed
    assert (last["fid_mean"] <= first.loc[last.index] / 4).all()  # align by gan, not by row order
    assert (last["fid_mean"] <= 3 * last["real_floor_fid_mean"]).all(), last["fid_mean"]
