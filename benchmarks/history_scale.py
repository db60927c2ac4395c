"""`bench history` over 500 runs of the quickstart suite's tables, against reading them naively.

Runs are generated in the real layout: the quickstart suite is planned by bench itself (real
cell ids and journal), each cell gets records with the columns its runner writes, and the real
`build_tables` makes a template run (robustness, robustness_agg, checks, training, gan,
gan_agg, extractors, cells; Parquet + CSV); 500 runs are copies of it (hard links) with their
own robustness and GAN tables (seeded noise, one planted step at run 250), start times and
commits. The folder is kept for reuse (--dir).

Contenders, alternating in one process (benchmarks/_common.py), imports excluded:
  naive   every run read whole through the migrating reader `open_run` (manifest, journal, all
          tables, all columns);
  cold    `build_history(..., use_index=False)`: the needed columns of the metric tables, and
          only the journal entries of cells not seen in another run;
  warm    `build_history(...)` with its index already written (each run read once, ever).
All three then group stacked, order the runs and find steps alike; their series are checked
equal. (That the stacked grouping equals compare's, run by run, is tests/test_history.py's
test_the_fast_reader_equals_reading_each_run_whole.)

    python benchmarks/history_scale.py                 # ~2-5 min the first time (generation)
    python benchmarks/history_scale.py --runs 500 --rounds 3 --dir /tmp/bench-history
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import alternate, describe_times, fmt_load, machine_lines, ratio_summary

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suites" / "quickstart.toml"
FINGERPRINT = "5d1c0ffee0d1g175"
STEP_AT, STEP_MODEL, STEP_EPS = 250, "cnn-fgsm", 0.1  # the planted regression


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-history")
    args = parser.parse_args()
    suite_dir = args.dir / f"quickstart-{args.runs}"
    if not (suite_dir / f"run-{args.runs - 1:04d}" / "manifest.json").exists():
        t0 = time.perf_counter()
        generate(suite_dir, args.runs)
        print(f"generated {args.runs} runs in {time.perf_counter() - t0:.0f} s: {suite_dir}")
    from bench.history import build_history
    from bench.history.index import index_path

    print("\n".join(machine_lines()))
    index_path(suite_dir).unlink(missing_ok=True)
    t0 = time.perf_counter()
    build_history(suite_dir, repo=None)  # writes the index
    print(f"first call, writing the index: {time.perf_counter() - t0:.2f} s")
    results = {}
    contenders = {
        "naive": lambda: results.__setitem__("naive", naive_history(suite_dir)),
        "cold": lambda: results.__setitem__("cold", build_history(suite_dir, repo=None,
                                                                  use_index=False)),
        "warm": lambda: results.__setitem__("warm", build_history(suite_dir, repo=None)),
    }
    times = alternate(contenders, rounds=args.rounds, warmup=0)
    check_equal(results)
    report(times, results["warm"], args.runs)
    cli_seconds(suite_dir)
    print(f"load average after: {fmt_load()}")


# -- the naive contender -------------------------------------------------------------------------

def naive_history(suite_dir: Path):
    """The same history, every run read whole: its manifest, journal and all its tables, every
    column, through the migrating reader `open_run`. Grouping, ordering and steps as bench's."""
    import pyarrow as pa

    from bench.compare.match import journal_groups
    from bench.compare.rules import METRICS, resolve_rules
    from bench.history.read import read_points
    from bench.history.result import History
    from bench.history.runs import order_runs, read_manifest, run_dirs, run_info
    from bench.history.series import build_series
    from bench.store.migrate import open_run

    def whole(run_dir, known):
        run = open_run(run_dir)
        tables = {t: pa.Table.from_pandas(run.table(t), preserve_index=False)
                  for t in METRICS if "cell_id" in run.table(t).columns}
        return journal_groups(run.journal), tables

    runs = [(d, run_info(read_manifest(d), d.name)) for d in run_dirs(suite_dir)]
    points = read_points(runs, load=whole)
    ordered = order_runs([i for _, i in runs], None).runs
    text = read_manifest(suite_dir / ordered[-1].run_id)["suite"]["text"]
    series = build_series(points, ordered, resolve_rules(text, None))
    return History(str(suite_dir), ordered, "by start time", series)


def check_equal(results: dict) -> None:
    def summary(h):
        return [(s.name, s.config_text(), s.device, [r.run_id for r in s.runs],
                 s.median.tolist(), s.lo.tolist(), s.hi.tolist(),
                 [(st.index, st.judgement.verdict) for st in s.steps]) for s in h.series]

    base = summary(results["naive"])
    for name in ("cold", "warm"):
        assert summary(results[name]) == base, f"{name} differs from the naive reading"
    steps = [(s.name, s.config_text(), st.index) for s in results["warm"].series
             for st in s.steps]
    print(f"all three agree: {len(base)} series, steps at {steps}")


def report(times: dict[str, list[float]], history, n_runs: int) -> None:
    print(f"\n{n_runs} runs, {len(history.series)} series, "
          f"{len(history.series) * n_runs} points")
    for name, t in times.items():
        print(describe_times(name, t))
    for fast in ("cold", "warm"):
        r = ratio_summary(times["naive"], times[fast])
        print(f"naive / {fast}: median of per-round ratios {r['median_ratio']:.1f}x "
              f"[IQR {r['ratio_q1']:.1f}, {r['ratio_q3']:.1f}], ratio of medians "
              f"{r['ratio_of_medians']:.1f}x")
    print(f"target: warm and cold <= 5 s: warm {np.median(times['warm']):.2f} s, "
          f"cold {np.median(times['cold']):.2f} s")


def cli_seconds(suite_dir: Path) -> None:
    """The whole command as a user runs it (interpreter start and imports included)."""
    bench = Path(sys.executable).parent / "bench"
    out = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([str(bench), "history", str(suite_dir), "--repo", str(suite_dir)],
                       check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    print(describe_times("CLI `bench history` (warm index, end to end)", out))


# -- generating the runs -------------------------------------------------------------------------

def generate(suite_dir: Path, n_runs: int) -> None:
    from bench.suite.load import load_suite
    from bench.suite.plan import plan

    loaded = load_suite(SUITE)
    cells = plan(loaded)
    template = suite_dir.parent / f".{suite_dir.name}-template"
    shutil.rmtree(template, ignore_errors=True)
    write_template(template, loaded, cells)
    rng = np.random.default_rng(0)
    rob = pd.read_parquet(template / "tables" / "robustness.parquet")
    gan = pd.read_parquet(template / "tables" / "gan.parquet")
    for i in range(n_runs):
        clone(template, suite_dir / f"run-{i:04d}", i, robustness_edit(rob, i, rng),
              gan_edit(gan, rng))


def write_template(run_dir: Path, loaded, cells) -> None:
    from bench.analysis.tables import build_tables
    from bench.store.run_store import CellRecord, RunStore

    store = RunStore(run_dir)
    records = {}
    for c in cells:
        rec = CellRecord(id=c.id, kind=c.kind, label=c.label, config=c.config, deps=c.deps,
                         status="ok", records=RECORDS[c.kind](c.config),
                         started_utc="2025-01-01T00:00:00+00:00",
                         finished_utc="2025-01-01T00:00:05+00:00", seconds=5.0)
        store.write_cell(rec)
        records[c.id] = rec
    store.write_tables(build_tables(records))
    store.write_manifest(manifest(loaded, cells))


def manifest(loaded, cells) -> dict:
    prov = {"versions": {"bench": "0.1.0", "torch": "2.14.1", "torchvision": "0.29.1",
                         "torchattacks": "3.5.1", "torch-fidelity": "0.4.0", "numpy": "2.4.6",
                         "pandas": "3.1.1", "python": "3.11.7"},
            "device": {"device": "cpu", "device_name": "AMD EPYC", "torch_threads": 1,
                       "cuda_available": False},
            "machine": {"hostname": "ci", "cpu_count": 2, "platform": "Linux"},
            "git": {"commit": "0" * 40, "dirty": False}}
    return {"schema_version": 2, "bench_version": "0.1.0", "run_id": "template",
            "suite": {"name": "quickstart", "path": str(SUITE), "sha256": loaded.sha256,
                      "text": loaded.text},
            "status": "complete", "started_utc": "2025-01-01T00:00:00+00:00",
            "finished_utc": "2025-01-01T00:02:00+00:00",
            "sessions": [{"started_utc": "2025-01-01T00:00:00+00:00", "status": "complete",
                          "executor": "local", "provenance": prov}],
            "seeds": [0, 1, 2], "executor": "local", "provenance": prov, "inputs": {},
            "counts": {"ok": len(cells), "failed": 0, "total": len(cells)},
            "cells": {c.id: {"kind": c.kind, "label": c.label, "deps": c.deps, "status": "ok",
                             "reason": None, "session": 0} for c in cells}}


def clone(template: Path, dst: Path, i: int, rob: pd.DataFrame, gan: pd.DataFrame) -> None:
    shutil.copytree(template, dst, copy_function=os.link)
    for name, df in (("robustness", rob), ("gan", gan)):
        for suffix in (".parquet", ".csv"):
            (dst / "tables" / f"{name}{suffix}").unlink()
        df.to_parquet(dst / "tables" / f"{name}.parquet", index=False)
        df.to_csv(dst / "tables" / f"{name}.csv", index=False)
    m = json.loads((template / "manifest.json").read_text())
    start = pd.Timestamp("2025-01-01T00:00:00+00:00") + pd.Timedelta(hours=i)
    m.update(run_id=dst.name, started_utc=start.isoformat())
    m["provenance"]["git"]["commit"] = hashlib.sha1(f"commit {i}".encode()).hexdigest()
    (dst / "manifest.json").unlink()
    (dst / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True))


def robustness_edit(rob: pd.DataFrame, i: int, rng) -> pd.DataFrame:
    shift = rng.normal(0, 0.004, len(rob))
    planted = (i >= STEP_AT) & (rob["model"] == STEP_MODEL) & (rob["epsilon"] == STEP_EPS) \
        & (rob["attack"] == "fgsm")
    robust = (rob["robust_acc"] + shift - np.where(planted, 0.05, 0.0)).clip(0, 1)
    seconds = rob["seconds"] * np.exp(rng.normal(0, 0.03))
    return rob.assign(robust_acc=robust, acc_drop=rob["clean_acc"] - robust,
                      attack_success_rate=(rob["clean_acc"] - robust) / rob["clean_acc"],
                      seconds=seconds, images_per_s=rob["n"] / seconds)


def gan_edit(gan: pd.DataFrame, rng) -> pd.DataFrame:
    return gan.assign(fid=gan["fid"] * np.exp(rng.normal(0, 0.02, len(gan))),
                      train_images_per_s=gan["train_images_per_s"] * np.exp(rng.normal(0, 0.03)))


# -- records with the columns each cell runner writes ----------------------------------------------

BASE_ACC = {"cnn": (0.99, 9.0), "cnn-fgsm": (0.97, 2.2)}  # clean accuracy, FGSM decay rate


def train_records(cfg: dict) -> dict:
    epochs = cfg["train"]["epochs"]
    rows = [{"arch": cfg["arch"], "catastrophic_overfit": False, "dataset": "digits",
             "epoch": e, "epsilon": cfg["train"].get("epsilon") or float("nan"),
             "heldout_clean_acc": 0.9 + e / 200, "heldout_pgd_acc": float("nan"),
             "model": cfg["model"], "recipe": cfg["train"]["recipe"], "seconds": 0.4,
             "seed": cfg["seed"], "train_acc": 0.8 + e / 100, "train_loss": 1.0 / e}
            for e in range(1, epochs + 1)]
    return {"training": rows}


def robustness_records(cfg: dict) -> dict:
    clean, decay = BASE_ACC[cfg["model"]]
    clean -= 0.004 * cfg["seed"]
    pgd = cfg["attack"] == "pgd"
    rows = []
    for eps in cfg["epsilons"]:
        robust = clean * np.exp(-decay * eps * (1.6 if pgd else 1.0))
        rows.append({"acc_drop": clean - robust, "attack": cfg["attack"],
                     "attack_repr": f"{cfg['attack'].upper()}(model_name=Sequential, eps={eps})",
                     "attack_success_rate": (clean - robust) / clean, "clean_acc": clean,
                     "dataset": "digits", "epsilon": eps,
                     "images_per_s": 3900.0 / (10 if pgd else 1), "linf_max": eps,
                     "linf_mean": eps, "linf_ok": True, "model": cfg["model"], "n": 450,
                     "relative_drop": (clean - robust) / clean, "robust_acc": robust,
                     "seconds": 0.8 * (10 if pgd else 1), "seed": cfg["seed"], "split": "test",
                     "data_fingerprint": FINGERPRINT})
    return {"robustness": rows}


def extractor_records(cfg: dict) -> dict:
    return {"extractors": [{"dataset": "digits", "feature_dim": 64, "hash": "02f0280616812128",
                            "name": "bench-domain-02f0280616812128", "test_accuracy": 0.978,
                            "train_steps": 1500}]}


def gan_records(cfg: dict) -> dict:
    rows = []
    for step in range(0, cfg["steps"] + 1, cfg["eval_every"]):
        fid = 190.0 * (13.3 / 190.0) ** (step / cfg["steps"]) + cfg["seed"] * 0.5
        rows.append({"amp": False, "arch": cfg["arch"], "dataset": "digits",
                     "eval_seconds": 11.9, "extractor": "bench-domain-02f0280616812128",
                     "extractor_hash": "02f0280616812128", "fid": fid, "gan": cfg["gan"],
                     "isc_mean": 1.5, "isc_std": 0.01, "kid_mean": fid / 10, "kid_std": 0.5,
                     "note": "", "num_real_samples": 500, "num_samples": cfg["num_samples"],
                     "precision": 0.5, "real_floor_fid": 1.0056, "real_floor_num_samples": 450,
                     "recall": 0.9, "seconds": step / 100, "seed": cfg["seed"], "step": step,
                     "train_images_per_s": float("nan") if step == 0 else 1700.0,
                     "data_fingerprint": FINGERPRINT})
    return {"gan": rows}


RECORDS = {"train": train_records, "robustness": robustness_records,
           "extractor": extractor_records, "gan": gan_records}

if __name__ == "__main__":
    main()
