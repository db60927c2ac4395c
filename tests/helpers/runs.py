"""Run folders for compare and report tests: synthetic runs in the real on-disk layout, and
helpers to copy a run and edit its tables or manifest.

Synthetic runs are written with the real `RunStore` (journal, tables as Parquet + CSV,
manifest), with the `cells` table made by the real `cells_table`, so they follow the
current schema; the golden runs under tests/data/golden/ were made by `bench run`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from bench.analysis.tables import build_tables
from bench.identity import cell_id
from bench.store import schema as S
from bench.store.atomic import atomic_write_bytes, atomic_write_text
from bench.store.run_store import CellRecord, RunStore

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden"
DEVICE_NAME = "Synthetic CPU @ 3.0GHz"

SUITE_TEXT = """[suite]
name = "synthetic"
seeds = [0, 1, 2]
"""


def make_manifest(run_id: str, cells: Iterable[CellRecord], *, suite_text: str = SUITE_TEXT,
                  device: str = "cpu", device_name: str = DEVICE_NAME, torch: str = "2.5.0",
                  cpu_count: int = 2, schema_version: int = S.SCHEMA_VERSION,
                  started_utc: str = "2025-01-01T00:00:00+00:00", commit: str = "0" * 40) -> dict:
    cells = list(cells)
    finished = (datetime.fromisoformat(started_utc) + timedelta(minutes=1)).isoformat()
    return {
        "schema_version": schema_version, "bench_version": "0.1.0", "run_id": run_id,
        "suite": {"name": "synthetic", "path": "synthetic.toml", "sha256": "0" * 64,
                  "text": suite_text},
        "status": "complete", "started_utc": started_utc,
        "finished_utc": finished,
        "sessions": [{"started_utc": started_utc, "finished_utc": finished,
                      "executor": "local", "status": "complete"}],
        "seeds": sorted({c.config.get("seed", 0) for c in cells}), "executor": "local",
        "counts": {"ok": sum(c.ok for c in cells), "failed": sum(not c.ok for c in cells),
                   "total": len(cells)},
        "provenance": {
            "versions": {"python": "3.11.2", "torch": torch, "torchvision": "0.20.0",
                         "torchattacks": "3.5.1", "torch-fidelity": "0.3.0"},
            "device": {"device": device, "device_name": device_name, "torch_threads": cpu_count,
                       "cuda_available": device.startswith("cuda")},
            "machine": {"hostname": "test", "cpu_count": cpu_count, "platform": "Linux"},
            "git": {"commit": commit, "dirty": False},
        },
        "cells": {c.id: {"kind": c.kind, "label": c.label, "deps": c.deps, "status": c.status,
                         "reason": c.reason} for c in cells},
    }


def make_cell(kind: str, config: dict, records: dict[str, list[dict]], label: str,
              status: str = "ok", reason: str | None = None) -> CellRecord:
    return CellRecord(id=cell_id(kind, config, {}), kind=kind, label=label, config=config, deps={},
                      status=status, reason=reason, records=records if status == "ok" else {},
                      seconds=1.0)


def robustness_cells(models: dict[str, tuple[float, list[float]]] | None = None,
                     seeds: Iterable[int] = (0, 1, 2), epsilons: Iterable[float] = (0.05, 0.1),
                     attack: str = "fgsm", seed_spread: float = 0.03,
                     rng_seed: int = 0) -> list[CellRecord]:
    """One robustness cell per (model, seed); accuracies vary a little from seed to seed."""
    models = models or {"cnn": (0.95, [0.70, 0.40]), "cnn-pgd": (0.90, [0.80, 0.65])}
    rng = np.random.default_rng(rng_seed)
    epsilons = list(epsilons)
    out = []
    for model, (clean, robust) in models.items():
        for seed in seeds:
            jitter = float(rng.uniform(-seed_spread, seed_spread))
            seconds = 0.5 + float(rng.uniform(0, 0.05))  # per cell, repeated on each row
            rows = []
            for eps, acc in zip(epsilons, robust):
                c, r = clean + jitter / 3, acc + jitter
                rows.append({"model": model, "dataset": "digits", "split": "test", "attack": attack,
                             "attack_repr": f"{attack.upper()}(eps={eps})", "epsilon": eps,
                             "seed": seed, "n": 400, "clean_acc": c, "robust_acc": r,
                             "acc_drop": c - r, "relative_drop": (c - r) / c,
                             "attack_success_rate": (c - r) / c, "linf_mean": eps, "linf_max": eps,
                             "seconds": seconds, "images_per_s": 400 / seconds})
            config = {"model": model, "attack": attack, "epsilons": epsilons, "seed": seed,
                      "dataset": {"name": "digits", "seed": 0}}
            out.append(make_cell("robustness", config, {S.ROBUSTNESS: rows},
                                 f"{attack} {model} seed={seed}"))
    return out


def throughput_cells(times_by_seed: dict[int, Iterable[float]], *, batch_size: int = 64,
                     workload: str = "inference", model: str = "cnn",
                     device_name: str = DEVICE_NAME) -> list[CellRecord]:
    """One throughput cell per seed with the given per-repeat seconds."""
    out = []
    for seed, times in times_by_seed.items():
        times = [float(t) for t in times]
        median = float(np.median(times))
        q75, q25 = np.percentile(times, [75, 25])
        row = {"workload": workload, "target": model, "arch": "small-cnn", "dataset": "digits",
               "batch_size": batch_size, "precision": "fp32", "channels_last": False,
               "compile": False, "seed": seed, "device": "cpu", "device_name": device_name,
               "torch_version": "2.5.0", "cuda_version": None, "threads": 2,
               "timing_method": "perf-counter", "warmup": 1, "repeats": len(times),
               "times_s": times, "median_s": median, "iqr_s": float(q75 - q25),
               "q1_s": float(q25), "q3_s": float(q75), "images_per_step": batch_size,
               "images_per_s": batch_size / median, "flops_per_step": 1e8,
               "achieved_tflops": 1e-4 / median, "peak_tflops": 0.05,
               "mfu": 1e-4 / median / 0.05, "peak_memory_bytes": 50_000_000,
               "memory_kind": "peak_rss", "peak_source": "synthetic", "skipped": False,
               "skip_reason": None}
        config = {"workload": workload, "target": {"model": model}, "batch_size": batch_size,
                  "precision": "fp32", "channels_last": False, "compile": False,
                  "repeats": len(times), "seed": seed}
        out.append(make_cell("throughput", config, {S.THROUGHPUT: [row]},
                             f"{workload} {model} bs={batch_size} fp32 seed={seed}"))
    return out


def gan_cells(fids: dict[int, float] | None = None, *, steps=(0, 250, 500),
              extractor: str = "bench-domain-0123456789abcdef") -> list[CellRecord]:
    """One DCGAN cell per seed, evaluated at `steps`; fids[seed] is its final FID."""
    fids = fids or {0: 13.0, 1: 14.0, 2: 12.5}
    out = []
    for seed, fid in fids.items():
        rows = []
        for step in steps:
            f = fid if step == max(steps) else 190.0 - step * (190.0 - fid) / max(steps)
            rows.append({"gan": "dcgan", "arch": "dcgan", "dataset": "digits", "amp": False,
                         "extractor": extractor, "extractor_hash": extractor[-16:],
                         "num_samples": 500, "num_real_samples": 500, "seed": seed, "step": step,
                         "fid": f, "kid_mean": f / 100, "kid_std": 0.01, "isc_mean": 1.5,
                         "isc_std": 0.01, "precision": 0.5, "recall": 0.9,
                         "real_floor_fid": 1.0, "real_floor_num_samples": 450,
                         "seconds": 1.0 + step / 100, "eval_seconds": 2.0, "note": "",
                         "train_images_per_s": float("nan") if step == 0 else 1700.0 + seed,
                         "data_fingerprint": "d1g175"})
        config = {"gan": "dcgan", "arch": "dcgan", "steps": max(steps), "seed": seed,
                  "num_samples": 500, "dataset": {"name": "digits", "seed": 0}}
        out.append(make_cell("gan", config, {S.GAN: rows}, f"gan dcgan seed={seed}"))
    return out


def synthetic_times(rng: np.random.Generator, repeats: int, median_s: float = 0.02,
                    noise: float = 0.05) -> np.ndarray:
    """Per-repeat seconds: a median and multiplicative log-normal noise."""
    return median_s * np.exp(rng.normal(0.0, noise, repeats))


def tables_from_cells(cells: Iterable[CellRecord]) -> dict[str, pd.DataFrame]:
    """The tables `bench run` would write for these journal entries."""
    return build_tables({c.id: c for c in cells})


def make_run(run_dir: Path, cells: Iterable[CellRecord], **manifest_kw) -> Path:
    cells = list(cells)
    store = RunStore(run_dir)
    for rec in cells:
        store.write_cell(rec)
    store.write_tables(tables_from_cells(cells))
    store.write_manifest(make_manifest(Path(run_dir).name, cells, **manifest_kw))
    return Path(run_dir)


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("run.lock", "report.*", "plots"))
    return dst


def edit_table(run_dir: Path, table: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite tables/<table>.parquet (+ .csv) with edit(df); edit(empty) writes a new one."""
    path = Path(run_dir) / "tables" / f"{table}.parquet"
    df = edit(pd.read_parquet(path) if path.exists() else pd.DataFrame())
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_suffix(".csv"), df.to_csv(index=False))


def edit_manifest(run_dir: Path, edit: Callable[[dict], None]) -> None:
    path = Path(run_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    atomic_write_text(path, json.dumps(manifest, indent=1, sort_keys=True))


def golden_run(name: str) -> Path:
    """The one run folder under tests/data/golden/<name>/ (e.g. name="v1")."""
    matches = sorted(GOLDEN.glob(f"{name}-*/*/*/manifest.json")) + sorted(
        GOLDEN.glob(f"{name}-*/manifest.json"))
    if not matches:
        raise FileNotFoundError(f"no golden run {name!r} under {GOLDEN}")
    return matches[0].parent


# -- many runs of one suite, for `bench history` ------------------------------------------------

HISTORY_START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def clone_run(template: Path, dst: Path, *, started_utc: str, commit: str = "0" * 40,
              device: str | None = None, device_name: str | None = None,
              tables: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] | None = None) -> Path:
    """A copy of `template` as another run: its own start time, commit and device, and tables
    edited by `tables[name](df)`. Files are hard links to the template's until replaced, and
    writes are plain (no fsync), so that tests can make hundreds of runs."""
    shutil.copytree(template, dst, ignore=shutil.ignore_patterns("run.lock", "report.*", "plots"),
                    copy_function=os.link)
    for name, edit in (tables or {}).items():
        path = dst / "tables" / f"{name}.parquet"
        df = edit(pd.read_parquet(path))
        path.unlink()  # a hard link: never write through it into the template
        df.to_parquet(path, index=False)
    manifest = json.loads((dst / "manifest.json").read_text())
    (dst / "manifest.json").unlink()
    manifest.update(run_id=dst.name, started_utc=started_utc)
    manifest["provenance"]["git"]["commit"] = commit
    if device is not None:
        manifest["provenance"]["device"]["device"] = device
    if device_name is not None:
        manifest["provenance"]["device"]["device_name"] = device_name
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return dst


def series_runs(suite_dir: Path, values, *, seed_spread: float = 0.0, device_names=None,
                commits=None, first: int = 0) -> list[Path]:
    """One run per row of `values`: robust_acc of each model (FGSM, ε = 0.1, seeds 0-2) has the
    given median over seeds, the seeds `seed_spread` apart. `values` maps model -> one value per
    run (or is one sequence, for model `cnn`): each model is a series of its own. Run i starts
    first + i hours after HISTORY_START; device_names[i] and commits[i] are recorded if given."""
    values = values if isinstance(values, dict) else {"cnn": values}
    template = suite_dir.parent / f".{suite_dir.name}-template"
    if not template.exists():
        models = {m: (0.95, [0.7]) for m in values}
        make_run(template, robustness_cells(models, epsilons=(0.1,), seed_spread=0.0))
    offsets = {0: -seed_spread, 1: 0.0, 2: seed_spread}
    out = []
    for i in range(len(next(iter(values.values())))):
        now = {m: float(v[i]) for m, v in values.items()}

        def edit(df, now=now):
            return df.assign(robust_acc=df["model"].map(now) + df["seed"].map(offsets))

        started = (HISTORY_START + timedelta(hours=first + i)).isoformat()
        out.append(clone_run(template, suite_dir / f"run-{first + i:04d}", started_utc=started,
                             commit=commits[i] if commits else "0" * 40,
                             device_name=device_names[i] if device_names else None,
                             tables={S.ROBUSTNESS: edit}))
    return out
