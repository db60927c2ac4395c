"""`bench history`: series over generated run folders, steps, outliers, devices, the latest run,
the fast reader and its index, ordering, formats and exit codes.

Run folders are generated in the real layout (tests/helpers/runs.py: a real `make_run` as the
template, copied per run with its robustness table edited). Several models in one set of runs
are independent series: seeded trials that share the folders. robust_acc's tolerance is
compare's default, 0.01 absolute, and the noise is as large, so the tolerance alone cannot
hide a false step.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.compare.rules import Rule
from bench.history import build_history
from bench.history import read as history_read
from bench.history.points import POINT_COLUMNS, run_points
from bench.history.read import read_points
from bench.history.runs import read_manifest, run_dirs, run_info
from bench.history.steps import detect_steps
from bench.store.migrate import open_run
from tests.helpers.runs import (
    HISTORY_START,
    clone_run,
    gan_cells,
    golden_run,
    make_run,
    robustness_cells,
    series_runs,
    synthetic_times,
    throughput_cells,
)

NOISE = 0.01  # run-to-run SD of the median robust_acc, equal to its tolerance


def robust_series(history, model: str):
    (s,) = [s for s in history.series if s.metric == "robust_acc" and s.key["model"] == model]
    return s


def noisy(rng, n: int, level: float = 0.7) -> np.ndarray:
    return level + rng.normal(0, NOISE, n)


def bench_history(capsys, *args) -> tuple[int, str, str]:
    code = main(["history", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- acceptance: steps, noise, outliers, devices ------------------------------------------------

@pytest.fixture(scope="module")
def sixty_runs(tmp_path_factory):
    """60 runs in one folder; each model is an independent, seeded series (a trial):
    step0-7 lose 0.05 at run 30; noise00-39 have no step; outlier0-4 have one outlier run."""
    rng = np.random.default_rng(30)
    values = {f"step{k}": noisy(rng, 60) - np.r_[np.zeros(30), np.full(30, 0.05)]
              for k in range(8)}
    values |= {f"noise{k:02d}": noisy(rng, 60) for k in range(40)}
    outliers = [(25, 0.15), (40, -0.2), (10, 0.08), (1, -0.3), (50, 0.05)]
    for k, (at, by) in enumerate(outliers):
        values[f"outlier{k}"] = noisy(rng, 60)
        values[f"outlier{k}"][at] += by
    commits = [f"{i:040x}" for i in range(60)]
    suite = tmp_path_factory.mktemp("history") / "suite"
    series_runs(suite, values, seed_spread=0.01, commits=commits)
    return build_history(suite, metrics=["robust_acc"], repo=None), commits, outliers


def test_a_planted_step_at_run_30_of_60_is_found_at_run_30(sixty_runs):
    h, commits, _ = sixty_runs
    for model in (f"step{k}" for k in range(8)):
        s = robust_series(h, model)
        assert len(s.steps) == 1, (model, [(st.index, st.judgement) for st in s.steps])
        (step,) = s.steps
        assert abs(step.index - 30) <= 1 and step.regression and step.beyond_noise
        assert s.runs[step.index].commit == commits[step.index]
        assert step.after - step.before == pytest.approx(-0.05, abs=0.012)
    assert h.exit_code == 0  # no step is at the latest run


def test_noise_without_a_step_yields_no_step_in_95_percent_of_trials(sixty_runs):
    h, _, _ = sixty_runs
    with_steps = [k for k in range(40) if robust_series(h, f"noise{k:02d}").steps]
    assert len(with_steps) <= 2, with_steps  # at least 38 of 40 (95%) without a step


def test_an_outlier_run_is_not_a_step(sixty_runs):
    h, _, outliers = sixty_runs
    for k, (at, by) in enumerate(outliers):
        s = robust_series(h, f"outlier{k}")
        assert not s.steps, (k, [(st.index, st.judgement) for st in s.steps])
        assert s.fit.pending is None
        # A far outlier is marked as one; a mild one (5 noise SDs) just stays in its level.
        assert (at in s.fit.outliers) == (abs(by) >= 0.08), (k, s.fit.outliers)


def test_a_step_still_counts_when_an_outlier_sits_beside_it():
    rng = np.random.default_rng(3)
    y = noisy(rng, 60) - np.r_[np.zeros(30), np.full(30, 0.05)]
    y[29] += 0.2
    fit = detect_steps(y, Rule("higher", abs_tol=0.01))
    assert [abs(s.index - 30) <= 1 for s in fit.steps] == [True] and 29 in fit.outliers


def test_runs_on_two_devices_form_two_series(tmp_path):
    rng = np.random.default_rng(2)
    names = ["CPU A"] * 15 + ["GPU B"] * 15  # the runs moved to another machine
    # The second device is 0.1 lower: mixed in one series, that would look like a regression.
    values = noisy(rng, 30) - np.where(np.array(names) == "GPU B", 0.1, 0.0)
    series_runs(tmp_path / "suite", values, seed_spread=0.01, device_names=names)
    h = build_history(tmp_path / "suite", repo=None)
    robust = [s for s in h.series if s.metric == "robust_acc"]
    assert sorted(s.device_name for s in robust) == ["CPU A", "GPU B"]
    for s in robust:
        assert len(s.runs) == 15 and {r.device_name for r in s.runs} == {s.device_name}
        assert not s.steps and not s.fit.outliers
    assert len(h.series) == 2 * len({(s.table, s.metric) for s in h.series})
    assert any("2 devices" in n for n in h.notes)
    mixed = detect_steps(values, Rule("higher", abs_tol=0.01))
    assert [(s.index, s.regression) for s in mixed.steps] == [(15, True)]  # what it would say


# -- the latest run and --fail-on-step ----------------------------------------------------------

def test_fail_on_step_exits_1_when_the_latest_run_regresses(tmp_path, capsys):
    rng = np.random.default_rng(11)
    y = noisy(rng, 20)
    y[-1] -= 0.1
    series_runs(tmp_path / "suite", y, seed_spread=0.01)
    code, out, _ = bench_history(capsys, tmp_path / "suite", "--fail-on-step", "--repo", tmp_path)
    assert code == 1, out
    assert "FAILING: robustness.robust_acc" in out and "pending regression" in out
    assert "run-0019" in out and "exit 1" in out
    code, out, _ = bench_history(capsys, tmp_path / "suite")
    assert code == 0 and "pending regression" in out and "exit 0" in out


def test_fail_on_step_is_silent_on_an_improvement_and_on_an_older_step(tmp_path, capsys):
    rng = np.random.default_rng(12)
    up = noisy(rng, 20)
    up[-1] += 0.1
    older = noisy(rng, 20) - np.r_[np.zeros(10), np.full(10, 0.06)]
    series_runs(tmp_path / "suite", {"up": up, "older": older}, seed_spread=0.01)
    code, out, _ = bench_history(capsys, tmp_path / "suite", "--fail-on-step")
    assert code == 0, out
    h = build_history(tmp_path / "suite", repo=None)
    assert robust_series(h, "up").fit.pending.judgement.verdict == "improved"
    (step,) = robust_series(h, "older").steps
    assert step.regression and abs(step.index - 10) <= 1
    assert "pending improvement" in out and "regression" in out


def test_a_pending_latest_run_that_the_next_run_contradicts_becomes_an_outlier(tmp_path):
    rng = np.random.default_rng(13)
    y = noisy(rng, 21)
    y[19] -= 0.1
    series_runs(tmp_path / "suite", y[:20], seed_spread=0.01)
    s = robust_series(build_history(tmp_path / "suite", repo=None), "cnn")
    assert s.fit.pending is not None and s.fit.pending.index == 19 and not s.steps
    series_runs(tmp_path / "suite", y[20:], seed_spread=0.01, first=20)
    s = robust_series(build_history(tmp_path / "suite", repo=None), "cnn")
    assert s.fit.pending is None and not s.steps and s.fit.outliers == [19]


# -- step detection, directly on series ---------------------------------------------------------

@pytest.mark.parametrize("n", [10, 30, 60, 200])
def test_the_fit_alone_rarely_makes_a_step_of_noise(n):
    """Tolerance 0: only the fit and the noise test stand between noise and a step."""
    rng = np.random.default_rng(n)
    rule = Rule("higher", abs_tol=0.0)
    trials = 300
    false = sum(bool(detect_steps(rng.normal(0, 1, n), rule).steps) for _ in range(trials))
    assert false / trials <= 0.05, false


def test_steps_respect_direction_and_tolerance():
    lower_better = Rule("lower", rel_tol=0.05)  # FID
    up = np.r_[np.full(10, 20.0), np.full(10, 23.0)]  # +15%: worse
    (step,) = detect_steps(up, lower_better).steps
    assert step.index == 10 and step.regression and step.judgement.test == "deterministic"
    (step,) = detect_steps(up[::-1], lower_better).steps
    assert step.judgement.verdict == "improved"
    small = np.r_[np.full(10, 20.0), np.full(10, 20.8)]  # +4%: within the tolerance
    assert not detect_steps(small, lower_better).steps


def test_beyond_noise_is_decided_by_the_margin_test_on_the_runs():
    """A clear level change of 3 against run noise of 0.3: beyond a tolerance of 2.5 it is
    beyond noise; against 2.8 the runs cannot show it is beyond the tolerance (noisy); past
    3.1 it is no step at all."""
    base = np.array([0, 0.5, -0.5, 0.2, -0.2, 0.1, -0.1, 0.0, 0.3, -0.3])
    y = np.r_[base, base[::-1] + 3.0]
    verdicts = {}
    for tol in (2.5, 2.8, 3.1):
        steps = detect_steps(y, Rule("higher", abs_tol=tol)).steps
        verdicts[tol] = [(s.index, s.judgement.verdict, s.beyond_noise) for s in steps]
    assert verdicts == {2.5: [(10, "improved", True)], 2.8: [(10, "noisy", False)], 3.1: []}


# -- reading: the fast reader, the index ---------------------------------------------------------

def mixed_runs(root: Path, n: int = 4) -> list[Path]:
    """Runs with robustness, throughput and GAN tables, different numbers in each."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        times = {s: synthetic_times(rng, 8) for s in (0, 1, 2)}
        cells = (robustness_cells(rng_seed=i) + throughput_cells(times)
                 + gan_cells({0: 13.0 + i, 1: 14.0, 2: 12.5 - i / 2}))
        out.append(make_run(root / f"run-{i}", cells,
                            started_utc=f"2025-01-0{i + 1}T00:00:00+00:00"))
    return out


def infos(dirs):
    return [(d, run_info(read_manifest(d), d.name)) for d in dirs]


def sorted_points(df: pd.DataFrame) -> pd.DataFrame:
    text = ["run", "table", "metric", "identity", "key", "data", "device", "device_name"]
    df = df[POINT_COLUMNS].astype({c: object for c in text})
    return df.sort_values(["run", "table", "metric", "identity"]).reset_index(drop=True)


def test_the_fast_reader_equals_reading_each_run_whole(tmp_path):
    dirs = mixed_runs(tmp_path / "suite")
    dirs += [shutil.copytree(golden_run(v), tmp_path / "suite" / f"golden-{v}") for v in ("v1", "v2")]
    fast = read_points(infos(dirs))
    slow = pd.concat([run_points(open_run(d), i) for d, i in infos(dirs)], ignore_index=True)
    assert len(fast) > 100 and set(fast["table"]) == {"robustness", "throughput", "gan"}
    pd.testing.assert_frame_equal(sorted_points(fast), sorted_points(slow))
    # GAN points are at the final step only, as compare judges them
    gan = fast[(fast["metric"] == "fid") & (fast["run"] == "run-3")]
    assert len(gan) == 1 and gan["median"].item() == pytest.approx(14.0)
    assert json.loads(gan["key"].item())["extractor"] == "bench-domain-0123456789abcdef"


def test_the_index_reads_each_run_once_and_rereads_what_changed(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    dirs = series_runs(tmp_path / "suite", noisy(rng, 12), seed_spread=0.01)
    read = []
    real = history_read.read_points

    def counting(runs):
        read.append(sorted(d.name for d, _ in runs))
        return real(runs)

    monkeypatch.setattr("bench.history.read_points", counting)
    cold = build_history(tmp_path / "suite", repo=None)
    assert len(read[-1]) == 12 and (tmp_path / ".cache" / "history" / "suite.parquet").exists()
    warm = build_history(tmp_path / "suite", repo=None)
    assert read[-1] == []
    assert [s.median.tolist() for s in warm.series] == [s.median.tolist() for s in cold.series]
    clone_run(dirs[3], tmp_path / "suite" / "run-0012",
              started_utc=(HISTORY_START.replace(day=2)).isoformat())
    shutil.rmtree(dirs[0])
    again = build_history(tmp_path / "suite", repo=None)
    assert read[-1] == ["run-0012"]
    assert [r.run_id for r in again.runs] == [d.name for d in dirs[1:]] + ["run-0012"]
    uncached = build_history(tmp_path / "suite", repo=None, use_index=False)
    assert [s.median.tolist() for s in again.series] == [s.median.tolist() for s in uncached.series]


def test_history_goes_on_when_the_index_cannot_be_written(tmp_path):
    rng = np.random.default_rng(6)
    series_runs(tmp_path / "suite", noisy(rng, 5), seed_spread=0.01)
    (tmp_path / ".cache").write_text("not a folder")
    h = build_history(tmp_path / "suite", repo=None)
    assert len(h.runs) == 5 and any("index was not saved" in n for n in h.notes)


def test_incomplete_runs_are_skipped_and_said(tmp_path, capsys):
    rng = np.random.default_rng(8)
    dirs = series_runs(tmp_path / "suite", noisy(rng, 5), seed_spread=0.01)
    manifest = json.loads((dirs[2] / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (dirs[2] / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "suite" / "not-a-run").mkdir()
    h = build_history(tmp_path / "suite", repo=None)
    assert [r.run_id for r in h.runs] == ["run-0000", "run-0001", "run-0003", "run-0004"]
    assert h.skipped == ["run-0002 (interrupted)"]
    assert len(run_dirs(tmp_path / "suite")) == 5


# -- ordering, window, input errors -------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_runs_follow_commit_order_when_git_knows_every_commit(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = []
    for k in range(3):
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
            "-m", f"c{k}")
        commits.append(git(repo, "rev-parse", "HEAD"))
    # Started in the opposite order of the commits (say, re-runs of old commits).
    series_runs(tmp_path / "suite", [0.7, 0.7, 0.7], commits=commits[::-1])
    by_commit = build_history(tmp_path / "suite", repo=repo)
    assert [r.commit for r in by_commit.runs] == commits and "by commit" in by_commit.ordering
    by_time = build_history(tmp_path / "suite", repo=tmp_path / "suite")  # not a git repo
    assert [r.commit for r in by_time.runs] == commits[::-1]
    assert by_time.ordering.startswith("by start time")


def test_since_and_last_choose_the_window(tmp_path):
    series_runs(tmp_path / "suite", np.full(10, 0.7))
    h = build_history(tmp_path / "suite", since="run-0004", last=3, repo=None)
    assert [r.run_id for r in h.runs] == ["run-0007", "run-0008", "run-0009"]
    h = build_history(tmp_path / "suite", since="2025-01-01T05:00:00", repo=None)
    assert h.runs[0].run_id == "run-0005" and len(h.runs) == 5


@pytest.mark.parametrize("args, message", [
    (["--metric", "robust_ac"], "did you mean 'robust_acc'"),
    (["--since", "yesterday"], "--since: expected a date"),
    (["--last", "0"], "--last: expected a positive number"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    series_runs(tmp_path / "suite", np.full(3, 0.7))
    code, out, err = bench_history(capsys, tmp_path / "suite", *args)
    assert code == 2 and message in err and err.count("\n") == 1 and not out


def test_a_missing_folder_or_one_without_complete_runs_exits_2(tmp_path, capsys):
    code, _, err = bench_history(capsys, tmp_path / "nowhere")
    assert code == 2 and "no such suite results folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = bench_history(capsys, tmp_path / "empty")
    assert code == 2 and "no complete run" in err


def test_an_internal_error_exits_3_not_a_verdict(tmp_path, capsys, monkeypatch):
    series_runs(tmp_path / "suite", np.full(3, 0.7))

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("bench.history.build_series", broken)
    code, out, err = bench_history(capsys, tmp_path / "suite", "--fail-on-step")
    assert code == 3 and "internal error in history" in err and "boom" in err and not out


# -- formats ------------------------------------------------------------------------------------

def test_json_markdown_and_html_say_the_same_steps(tmp_path, capsys):
    rng = np.random.default_rng(21)
    y = noisy(rng, 16) - np.r_[np.zeros(8), np.full(8, 0.05)]
    series_runs(tmp_path / "suite", y, seed_spread=0.01)
    code, out, _ = bench_history(capsys, tmp_path / "suite", "--format", "json", "--metric",
                                 "robustness.robust_acc")
    data = json.loads(out)
    (series,) = data["series"]
    assert code == 0 and data["exit_code"] == 0 and len(series["runs"]) == 16
    (step,) = series["steps"]
    assert step["run"] == "run-0008" and step["kind"] == "regression" and step["beyond_noise"]
    assert series["device_name"] and series["extractor"] is None
    code, out, _ = bench_history(capsys, tmp_path / "suite", "--format", "markdown")
    assert "## bench history" in out and "| **regression** |" in out and "run-0008" in out
    page = tmp_path / "history.html"
    code, _, err = bench_history(capsys, tmp_path / "suite", "--format", "html", "-o", page)
    text = page.read_text()
    assert code == 0 and str(page) in err
    assert text.count("<svg ") == len(build_history(tmp_path / "suite", repo=None).series)
    assert 'class="step"' in text and "<script" not in text


def test_gan_series_say_their_extractor_and_never_mix_two(tmp_path):
    cells = gan_cells()
    other = gan_cells(extractor="bench-domain-fedcba9876543210")
    make_run(tmp_path / "suite" / "a", cells, started_utc="2025-01-01T00:00:00+00:00")
    make_run(tmp_path / "suite" / "b", cells, started_utc="2025-01-02T00:00:00+00:00")
    make_run(tmp_path / "suite" / "c", other, started_utc="2025-01-03T00:00:00+00:00")
    h = build_history(tmp_path / "suite", metrics=["fid"], repo=None)
    assert sorted((s.extractor, len(s.runs)) for s in h.series) == [
        ("bench-domain-0123456789abcdef", 2), ("bench-domain-fedcba9876543210", 1)]


# build_tables' aggregates over the infinite FIDs warn while the test writes its runs
@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")
def test_a_run_whose_median_is_not_finite_is_left_out_and_named(tmp_path):
    make_run(tmp_path / "suite" / "a", gan_cells(), started_utc="2025-01-01T00:00:00+00:00")
    make_run(tmp_path / "suite" / "b", gan_cells({s: float("inf") for s in range(3)}),
             started_utc="2025-01-02T00:00:00+00:00")
    make_run(tmp_path / "suite" / "c", gan_cells(), started_utc="2025-01-03T00:00:00+00:00")
    (fid,) = build_history(tmp_path / "suite", metrics=["fid"], repo=None).series
    assert [r.run_id for r in fid.runs] == ["a", "c"] and fid.non_finite == ["b"]
