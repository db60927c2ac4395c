"""`bench compare`: matching, verdicts, machine awareness, rules, schema versions, exit codes.

Runs are golden runs made by `bench run` (tests/data/golden/, schema v1 and v2), copies of
them with edited tables, or synthetic runs in the real layout (tests/helpers/runs.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.compare import compare_runs
from bench.store import schema as S
from bench.store.migrate import migrate_tables, open_run
from tests.helpers.runs import (
    copy_run,
    edit_manifest,
    edit_table,
    golden_run,
    make_run,
    robustness_cells,
    synthetic_times,
    throughput_cells,
)

V1, V2 = golden_run("v1"), golden_run("v2")


def bench_compare(capsys, *args) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def lower_robust_acc(run: Path, model: str = "cnn", by: float = 0.05) -> None:
    edit_table(run, S.ROBUSTNESS, lambda df: df.assign(
        robust_acc=df["robust_acc"].where(df["model"] != model, df["robust_acc"] - by)))


def cnn_robustness_cells(run: Path) -> dict[str, str]:
    """id -> label of the robustness cells of model cnn."""
    rob = pd.read_parquet(run / "tables" / "robustness.parquet")
    ids = set(rob.loc[rob["model"] == "cnn", S.CELL_ID])
    cells = open_run(run).table(S.CELLS)
    return dict(cells.loc[cells[S.CELL_ID].isin(ids), [S.CELL_ID, "label"]].values)


# -- same seeds and code: nothing regressed ------------------------------------------------------

def test_identical_runs_exit_0(tmp_path, capsys):
    cand = copy_run(V2, tmp_path / "cand")
    code, out, _ = bench_compare(capsys, V2, cand)
    assert code == 0, out
    assert "REGRESSED" not in out and "robust_acc" in out and "exit 0" in out
    c = compare_runs(V2, cand)
    assert c.matched == 9 and {r.verdict for r in c.rows} == {"unchanged"}
    assert {r.metric for r in c.rows} >= {"clean_acc", "robust_acc", "images_per_s"}


def test_golden_v1_and_v2_runs_of_the_same_suite_agree_on_accuracy():
    """Two real `bench run`s of one suite and seeds (before/after the schema change): the
    accuracies are identical and nothing regresses; only timings differ."""
    c = compare_runs(V1, V2)
    acc = [r for r in c.rows if r.metric in ("clean_acc", "robust_acc", "attack_success_rate")]
    assert acc and all(r.verdict == "unchanged" and r.delta == 0 for r in acc)
    assert c.matched == 9 and not c.only_baseline and not c.only_candidate
    assert c.exit_code == 0, [(r.metric, r.verdict) for r in c.regressions]


def test_synthetic_runs_with_the_same_seeds_exit_0(tmp_path):
    rng = np.random.default_rng(0)
    times = {s: synthetic_times(rng, 10) for s in (0, 1, 2)}
    base = make_run(tmp_path / "a", robustness_cells() + throughput_cells(times))
    cand = make_run(tmp_path / "b", robustness_cells() + throughput_cells(times))
    c = compare_runs(base, cand)
    assert c.exit_code == 0 and {r.verdict for r in c.rows} == {"unchanged"}


# -- a real regression: 5 points of robust accuracy in every seed ---------------------------

def test_robust_accuracy_down_5_points_in_every_seed_exits_1_naming_cells_and_metric(
        tmp_path, capsys):
    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    code, out, _ = bench_compare(capsys, V2, cand)
    assert code == 1
    regressed = [line for line in out.splitlines() if line.strip().startswith("REGRESSED")]
    assert regressed and all("robust_acc" in line for line in regressed)
    assert len(regressed) == 3  # one per epsilon
    for cell_id, label in cnn_robustness_cells(cand).items():
        assert cell_id in regressed[0] and label in regressed[0]
    # The very same 5 points in every seed: no noise in the change, the tolerance decides.
    assert "deterministic" in regressed[0]
    # the untouched metrics stay unchanged
    c = compare_runs(V2, cand)
    assert {r.metric for r in c.regressions} == {"robust_acc"}
    assert all(r.verdict == "unchanged" for r in c.rows if r.metric == "clean_acc")


def test_regression_found_against_a_v1_baseline(tmp_path, capsys):
    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    code, out, _ = bench_compare(capsys, V1, cand)
    assert code == 1 and "REGRESSED robust_acc" in out
    assert "schema v1, migrated" in out


def test_json_output_lists_regressions(tmp_path, capsys):
    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    code, out, _ = bench_compare(capsys, V2, cand, "--format", "json")
    data = json.loads(out)
    assert code == data["exit_code"] == 1
    assert {r["metric"] for r in data["regressions"]} == {"robust_acc"}
    assert set(data["regressions"][0]["cells"]) == set(cnn_robustness_cells(cand))
    row = next(r for r in data["rows"] if r["verdict"] == "regressed")
    assert row["delta"] == pytest.approx(-0.05) and row["test"] == "deterministic"
    assert {"baseline", "candidate", "delta_pct", "p_value", "mde", "verdict"} <= set(row)


def test_markdown_output_is_a_table(tmp_path, capsys):
    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    code, out, _ = bench_compare(capsys, V2, cand, "--format", "markdown")
    assert code == 1
    assert "| verdict | metric | config | n | baseline | candidate | Δ | Δ% | test | p | mde |" in out
    assert "| **regressed** | **robust_acc** |" in out


# -- throughput: noise-aware ---------------------------------------------------------------

def _throughput_pair(tmp_path, scale: float, repeats: int = 30, noise: float = 0.10,
                     seed: int = 0, cand_device: str | None = None):
    rng = np.random.default_rng(seed)
    base = make_run(tmp_path / "base", throughput_cells({0: synthetic_times(rng, repeats, noise=noise)}))
    kw = {"device_name": cand_device} if cand_device else {}
    times = synthetic_times(rng, repeats, noise=noise) / scale  # scale = images/s ratio
    cand = make_run(tmp_path / "cand", throughput_cells({0: times}, **kw), **kw)
    return base, cand


def _images_per_s_row(c):
    (row,) = [r for r in c.rows if r.table == S.THROUGHPUT and r.metric == "images_per_s"]
    return row


def test_throughput_change_smaller_than_the_tolerance_is_not_flagged(tmp_path):
    for seed in range(10):
        base, cand = _throughput_pair(tmp_path / str(seed), scale=0.97, noise=0.01, seed=seed)
        row = _images_per_s_row(compare_runs(base, cand))
        assert (row.verdict, row.test) == ("unchanged", "run-to-run"), (seed, row)
        assert row.n_baseline == row.n_candidate == 1  # one value per run, not per repeat


def test_tight_repeats_within_a_run_are_not_evidence_of_a_change(tmp_path):
    """Repeats share the run's machine state: 30 tight repeats 3% apart are no regression,
    while the Mann-Whitney test of repeats that compare used to run calls it one."""
    from scipy import stats

    rng = np.random.default_rng(0)
    b = synthetic_times(rng, 30, noise=0.005)
    c = synthetic_times(rng, 30, noise=0.005) / 0.97
    assert stats.mannwhitneyu(1 / c, 1 / b, alternative="less").pvalue < 1e-6
    base = make_run(tmp_path / "base", throughput_cells({0: b}))
    cand = make_run(tmp_path / "cand", throughput_cells({0: c}))
    assert _images_per_s_row(compare_runs(base, cand)).verdict == "unchanged"


def test_throughput_drop_of_80_percent_is_flagged(tmp_path, capsys):
    """Beyond the default run-to-run tolerance (60%, measured on this project's machine)."""
    base, cand = _throughput_pair(tmp_path, scale=0.20)
    code, out, _ = bench_compare(capsys, base, cand)
    assert code == 1
    row = _images_per_s_row(compare_runs(base, cand))
    assert row.verdict == "regressed" and row.test == "run-to-run" and row.p_value is None
    assert row.delta_pct == pytest.approx(-80, abs=6)
    assert "REGRESSED images_per_s [throughput" in out


# -- machine awareness ------------------------------------------------------------------------

def test_cross_device_throughput_is_not_gated_but_robustness_still_is(tmp_path, capsys):
    rng = np.random.default_rng(0)
    base = make_run(tmp_path / "base", robustness_cells()
                    + throughput_cells({0: synthetic_times(rng, 30)}))
    cand = make_run(tmp_path / "cand", robustness_cells()
                    + throughput_cells({0: synthetic_times(rng, 30) / 0.2}, device_name="Other GPU"),
                    device="cuda:0", device_name="Other GPU", torch="2.6.0")
    lower_robust_acc(cand)

    code, out, _ = bench_compare(capsys, base, cand)
    assert code == 1  # the robustness regression still counts
    assert "device name differs" in out and "torch differs" in out
    assert "--allow-cross-device" in out
    c = compare_runs(base, cand)
    assert _images_per_s_row(c).verdict == "ungated"
    assert {r.metric for r in c.regressions} == {"robust_acc"}
    assert all(r.verdict == "ungated" for r in c.rows if r.metric in ("images_per_s", "seconds"))

    c = compare_runs(base, cand, allow_cross_device=True)
    assert _images_per_s_row(c).verdict == "regressed"
    code, out, _ = bench_compare(capsys, base, cand, "--allow-cross-device")
    assert code == 1 and "REGRESSED images_per_s" in out


def test_throughput_alone_across_devices_exits_0(tmp_path, capsys):
    base, cand = _throughput_pair(tmp_path, scale=0.20, cand_device="Other CPU")
    code, out, _ = bench_compare(capsys, base, cand)
    assert code == 0 and "ungated" in out and "different devices" in out


# -- cells present in one run only, failed cells ------------------------------------------------

def test_cells_in_one_run_only_are_listed(tmp_path):
    base = make_run(tmp_path / "a", robustness_cells(seeds=(0, 1, 2)))
    cand = make_run(tmp_path / "b", robustness_cells(seeds=(0, 1, 3)))
    c = compare_runs(base, cand)
    assert {label for _, label in c.only_baseline} == {"fgsm cnn seed=2", "fgsm cnn-pgd seed=2"}
    assert {label for _, label in c.only_candidate} == {"fgsm cnn seed=3", "fgsm cnn-pgd seed=3"}
    assert c.matched == 4 and all(r.n_baseline == r.n_candidate == 2 for r in c.rows)


def test_a_cell_that_failed_in_the_candidate_exits_1(tmp_path, capsys):
    cells = robustness_cells()
    base = make_run(tmp_path / "a", cells)
    broken = cells[0]
    broken.status, broken.reason, broken.records = "failed", "diverged: loss is NaN", {}
    cand = make_run(tmp_path / "b", cells)
    code, out, _ = bench_compare(capsys, base, cand)
    assert code == 1 and f"cell {broken.id} ({broken.label}): diverged: loss is NaN" in out


# -- rules: defaults, suite [compare], --rules ----------------------------------------------------

def test_rules_file_can_widen_a_tolerance(tmp_path, capsys):
    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    rules = tmp_path / "rules.toml"
    rules.write_text("[robust_acc]\nabs_tol = 0.1\n")
    code, out, _ = bench_compare(capsys, V2, cand, "--rules", rules)
    assert code == 0, out
    rules.write_text('[robustness.robust_acc]\ndirection = "lower"\n')  # table-qualified
    code, out, _ = bench_compare(capsys, V2, cand, "--rules", rules)
    assert code == 0 and "improved" in out


def test_suite_compare_table_in_the_manifest_is_used(tmp_path):
    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    edit_manifest(cand, lambda m: m["suite"].update(
        text=m["suite"]["text"] + "\n[compare.robust_acc]\nabs_tol = 0.2\n"))
    c = compare_runs(V2, cand)
    assert c.exit_code == 0 and any("suite [compare]" in s for s in c.rule_sources)


@pytest.mark.parametrize("text, message", [
    ("[robust_acc]\nrel_tolerance = 0.1\n", "robust_acc.rel_tolerance (line 2): unknown key"),
    ("[robust_ac]\nabs_tol = 0.1\n", "unknown metric 'robust_ac'; did you mean 'robust_acc'?"),
    ('[fid]\ndirection = "up"\n', "fid.direction (line 2)"),
    ("[fid]\nalpha = 1.5\n", "fid.alpha"),
    ("[fid\n", "invalid TOML"),
])
def test_bad_rules_files_exit_2(tmp_path, capsys, text, message):
    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    code, out, err = bench_compare(capsys, V2, V2, "--rules", rules)
    assert code == 2 and message in err and not out


def test_missing_rules_file_exits_2(tmp_path, capsys):
    code, _, err = bench_compare(capsys, V2, V2, "--rules", tmp_path / "nope.toml")
    assert code == 2 and "no such rules file" in err


# -- schema versions and bad input ---------------------------------------------------------------

def test_v1_golden_is_migrated_in_memory_only():
    before = pd.read_parquet(V1 / "tables" / "cells.parquet")
    assert "id" in before.columns and S.CELL_ID not in before.columns  # as recorded
    run = open_run(V1)
    assert run.recorded_version == 1 and run.migrated
    assert S.CELL_ID in run.table(S.CELLS).columns and "id" not in run.table(S.CELLS).columns
    assert json.loads((V1 / "manifest.json").read_text())["schema_version"] == 1  # untouched
    assert open_run(V2).recorded_version == 2 and open_run(V2).migrated


def test_migration_v1_to_v2_renames_the_cells_key():
    cells = pd.DataFrame({"id": ["a", "b"], "kind": ["train", "robustness"]})
    out = migrate_tables({S.CELLS: cells, "robustness": pd.DataFrame({"cell_id": ["b"]})}, 1)
    assert list(out[S.CELLS].columns) == ["cell_id", "kind"]
    assert list(out["robustness"].columns) == ["cell_id"]
    assert migrate_tables({S.CELLS: cells}, S.SCHEMA_VERSION)[S.CELLS] is cells  # current


def test_migration_v2_to_v3_drops_the_unread_robustness_columns():
    before = pd.read_parquet(V2 / "tables" / "robustness.parquet")
    assert {"zero_grad_frac", "eval_mode"} <= set(before.columns)  # as recorded
    after = open_run(V2).table(S.ROBUSTNESS)
    assert not {"zero_grad_frac", "eval_mode"} & set(after.columns)
    assert set(after.columns) <= set(S.COLUMNS[S.ROBUSTNESS]) | {S.CELL_ID}
    assert len(after) == len(before)


def test_unknown_future_schema_version_exits_2(tmp_path, capsys):
    future = copy_run(V2, tmp_path / "future")
    edit_manifest(future, lambda m: m.update(schema_version=S.SCHEMA_VERSION + 1))
    code, out, err = bench_compare(capsys, V2, future)
    assert code == 2 and not out
    assert f"schema v{S.SCHEMA_VERSION + 1}, newer than this bench reads" in err


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("schema_version"), "no valid schema_version"),
    (lambda m: m.update(schema_version="2"), "no valid schema_version"),
    (lambda m: m.update(schema_version=0), "older than this bench reads"),
])
def test_bad_schema_versions_exit_2(tmp_path, capsys, edit, message):
    run = copy_run(V2, tmp_path / "bad")
    edit_manifest(run, edit)
    code, _, err = bench_compare(capsys, run, V2)
    assert code == 2 and message in err


def test_missing_run_and_non_run_folders_exit_2(tmp_path, capsys):
    code, _, err = bench_compare(capsys, tmp_path / "nowhere", V2)
    assert code == 2 and "no such run folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = bench_compare(capsys, V2, tmp_path / "empty")
    assert code == 2 and "no manifest.json" in err


def test_cells_table_without_its_key_is_incompatible(tmp_path, capsys):
    run = copy_run(V2, tmp_path / "bad")
    edit_table(run, S.CELLS, lambda df: df.rename(columns={S.CELL_ID: "key"}))
    code, _, err = bench_compare(capsys, V2, run)
    assert code == 2 and "incompatible results" in err


def test_runs_without_a_journal_are_matched_by_row_keys(tmp_path):
    import shutil

    cand = copy_run(V2, tmp_path / "cand")
    lower_robust_acc(cand)
    shutil.rmtree(cand / "cells")
    c = compare_runs(V2, cand)
    assert {r.metric for r in c.regressions} == {"robust_acc"} and len(c.regressions) == 3


# -- the gate cannot pass what it has not seen ----------------------------------------------------

def _scale_robust_acc(run: Path, factor: float) -> None:
    edit_table(run, S.ROBUSTNESS, lambda df: df.assign(robust_acc=df["robust_acc"] * factor))


def test_single_seed_deterministic_suite_catches_robust_accuracy_times_0_8(tmp_path, capsys):
    """One seed of a user's checkpoint under FGSM: no spread to measure, the tolerance decides."""
    cells = robustness_cells(seeds=(0,), seed_spread=0.0)
    base, cand = make_run(tmp_path / "a", cells), make_run(tmp_path / "b", cells)
    _scale_robust_acc(cand, 0.8)
    code, out, _ = bench_compare(capsys, base, cand)
    assert code == 1
    rows = [r for r in compare_runs(base, cand).rows if r.metric == "robust_acc"]
    assert rows and all((r.verdict, r.test) == ("regressed", "deterministic") for r in rows)
    assert "one sample a side" in rows[0].note


def test_one_blown_up_seed_is_a_regression(tmp_path):
    cells = robustness_cells()
    base, cand = make_run(tmp_path / "a", cells), make_run(tmp_path / "b", cells)
    edit_table(cand, S.ROBUSTNESS, lambda df: df.assign(robust_acc=df["robust_acc"].where(
        ~((df["seed"] == 2) & (df["model"] == "cnn")), 0.05)))
    c = compare_runs(base, cand)
    regressed = {(r.key["model"], r.metric, r.test) for r in c.regressions}
    assert ("cnn", "robust_acc", "worst-seed") in regressed
    assert c.exit_code == 1


def test_interrupted_candidate_missing_cells_fails(tmp_path, capsys):
    cells = robustness_cells()
    base = make_run(tmp_path / "a", cells)
    cand = make_run(tmp_path / "b", cells[:-2])  # killed before its last cells
    edit_manifest(cand, lambda m: m.update(status="interrupted"))
    code, out, _ = bench_compare(capsys, base, cand)
    assert code == 1
    assert "MISSING: the candidate run is interrupted, not complete" in out
    assert "of the baseline is missing from the candidate" in out
    # Intended removals can be accepted, and say so.
    code, out, _ = bench_compare(capsys, base, cand, "--allow-missing")
    assert code == 0 and "missing (allowed by --allow-missing)" in out


def test_a_baseline_metric_group_missing_from_the_candidate_fails(tmp_path):
    cells = robustness_cells()
    base, cand = make_run(tmp_path / "a", cells), make_run(tmp_path / "b", cells)
    edit_table(cand, S.ROBUSTNESS, lambda df: df[df["epsilon"] != 0.1])  # one ε dropped
    c = compare_runs(base, cand)
    assert c.exit_code == 1 and c.missing_groups
    assert {g.key["epsilon"] for g in c.missing_groups} == {0.1}
    assert compare_runs(base, cand, allow_missing=True).exit_code == 0


def test_nothing_matched_fails_even_with_allow_missing(tmp_path, capsys):
    base = make_run(tmp_path / "a", robustness_cells(seeds=(0, 1)))
    cand = make_run(tmp_path / "b", robustness_cells(seeds=(5, 6)))
    code, out, _ = bench_compare(capsys, base, cand, "--allow-missing")
    assert code == 1 and "NOTHING COMPARED" in out


def test_different_data_is_never_compared(tmp_path):
    cells = robustness_cells()
    base, cand = make_run(tmp_path / "a", cells), make_run(tmp_path / "b", cells)
    for run, fp in ((base, "aaaa"), (cand, "bbbb")):
        edit_table(run, S.ROBUSTNESS, lambda df, fp=fp: df.assign(data_fingerprint=fp))
    c = compare_runs(base, cand)
    assert not [r for r in c.rows if r.table == S.ROBUSTNESS and r.metric == "robust_acc"]
    assert c.exit_code == 1 and c.missing_groups


def test_an_internal_error_exits_3_with_one_line(tmp_path, capsys, monkeypatch):
    import bench.compare as compare

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(compare, "compare_runs", broken)
    code, out, err = bench_compare(capsys, V2, V2)
    assert code == 3 and not out
    assert len(err.strip().splitlines()) == 1 and "internal error" in err


def test_report_reads_a_v1_run_through_the_migrating_reader(tmp_path, capsys):
    run = copy_run(V1, tmp_path / "v1")
    assert main(["report", str(run)]) == 0
    md = (run / "report.md").read_text()
    assert "Robustness" in md and (run / "report.html").exists()
