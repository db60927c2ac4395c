"""Acceptance numbers on the shipped suites (slow: minutes). Run with `pytest -m slow`.

These are the figures quoted in the README's results section.
"""

from pathlib import Path

import pytest

from bench.cli import main
from bench.store.run_store import RunStore

SUITES = Path(__file__).resolve().parent.parent / "suites"
pytestmark = pytest.mark.slow


def run(suite: str, results: Path) -> RunStore:
    assert main(["run", str(SUITES / suite), "--results-dir", str(results), "--no-progress"]) == 0
    (run_dir,) = [p for p in (results / suite.removesuffix(".toml")).iterdir() if p.is_dir()]
    return RunStore(run_dir)


def test_quickstart_robustness_targets(tmp_path):
    store = run("quickstart.toml", tmp_path)
    agg = store.read_table("robustness_agg")
    at = agg[(agg.attack == "fgsm") & (agg.epsilon.round(6) == 0.2)].set_index("model")
    print(at[["clean_acc_mean", "robust_acc_mean", "robust_acc_std"]])
    assert at.loc["cnn", "n_seeds"] >= 3
    assert at.loc["cnn", "robust_acc_mean"] <= 0.15
    assert at.loc["cnn-fgsm", "robust_acc_mean"] >= 0.40
    assert at.loc["cnn-fgsm", "clean_acc_mean"] >= 0.95
    assert (store.dir / "report.html").exists()


def test_gan_digits_targets(tmp_path):
    store = run("gan-digits.toml", tmp_path)
    agg = store.read_table("gan_agg")
    first = agg[agg.step == 0].set_index("gan")["fid_mean"]
    last = agg.sort_values("step").groupby("gan").tail(1).set_index("gan")
    print(last[["step", "fid_mean", "real_floor_fid_mean"]], first)
    assert set(last.index) == {"dcgan", "wgan-gp", "sngan"}
    assert (last["n_seeds"] >= 3).all()
    assert (last["fid_mean"] <= first.loc[last.index] / 4).all()  # align by gan, not by row order
    assert (last["fid_mean"] <= 3 * last["real_floor_fid_mean"]).any()
