"""`bench run`: suite -> plan -> executor -> journal + tables + manifest -> report.

The driver is the only writer of the run folder. Each finished cell is journaled at once
(atomically), so a crash or Ctrl-C loses only the cells in flight and a re-run resumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench import __version__, defaults, provenance
from bench.analysis.tables import build_tables, checkpoint_notes
from bench.cells import RunEnv
from bench.errors import UserError
from bench.executors import EXECUTORS
from bench.executors.progress import CellProgress
from bench.identity import code_identity
from bench.interrupts import interrupts_unwrapped, sigterm_interrupts
from bench.store.lock import RunLock
from bench.store.run_store import CellRecord, RunStore
from bench.store.schema import SCHEMA_VERSION
from bench.suite.cell_configs import GanCellConfig, RobustBenchSource, UserSource
from bench.suite.load import LoadedSuite, load_suite
from bench.suite.plan import Cell, plan
from bench.suite.preflight import preflight


@dataclass
class RunOutcome:
    run_dir: Path
    ok: int
    failed: int
    status: str  # complete | failed | interrupted

    @property
    def exit_code(self) -> int:
        return {"complete": 0, "failed": 1, "interrupted": 130}[self.status]


def run_suite(suite_path: str | Path | LoadedSuite, *,
              results_dir: str | Path = defaults.RESULTS_DIR,
              run_id: str | None = None, resume: bool = True, executor: str | None = None,
              executor_options: dict | None = None, device: str | None = None,
              cache_dir: str | Path | None = None, progress: bool = True,
              report: bool = True, reuse_other_code: bool = False) -> RunOutcome:
    """`reuse_other_code`: resume a run, and reuse cached trained weights, made by other bench
    code (by default neither happens: a change in bench must show in its results).
    `suite_path` may also be a suite already loaded (bench.api.run_suite with a dict)."""
    loaded = suite_path if isinstance(suite_path, LoadedSuite) else load_suite(suite_path)
    cells = plan(loaded)
    preflight(loaded, cells)  # bad input fails here, before any folder exists
    meta = loaded.suite.suite
    device = provenance.resolve_device(device or meta.device)
    executor_name = executor or meta.executor
    options = {"address": meta.ray_address, "num_gpus": meta.ray_num_gpus,
               "max_retries": meta.ray_max_retries, "schedule_timeout": meta.ray_schedule_timeout
               } if executor_name == "ray" else {"workers": meta.workers}
    options |= executor_options or {}
    runner = EXECUTORS.get(executor_name)(**options)

    results_dir = Path(results_dir)
    code = code_identity()
    run_dir = choose_run_dir(results_dir / meta.name, loaded, run_id, resume, code,
                             reuse_other_code)
    store = RunStore(run_dir)
    threads = meta.threads
    env = RunEnv(device=device, artifacts_dir=store.artifacts_dir, progress=progress,
                 cache_dir=Path(cache_dir) if cache_dir else results_dir / defaults.CACHE_SUBDIR,
                 threads=os.cpu_count() or 1 if threads == "all" else threads, code=code,
                 reuse_other_code=reuse_other_code, deterministic=meta.deterministic,
                 results_dir=results_dir)
    runner.prepare(cells, env.device, env.threads)  # refuses what cannot run: no folder yet
    with RunLock(run_dir):
        return _run_locked(loaded, cells, store, runner, executor_name, env, report)


def _run_locked(loaded: LoadedSuite, cells: list[Cell], store: RunStore, runner, executor_name: str,
                env: RunEnv, report: bool) -> RunOutcome:
    planned = {c.id: c for c in cells}
    manifest, bar, status, tables = None, None, "interrupted", None
    # From the first line on, an interrupt (Ctrl-C, SIGTERM) leaves a manifest that says so
    # once this session has one, however early it lands.
    with sigterm_interrupts():
        try:
            with interrupts_unwrapped():  # one a library wrapped (pydantic) is one too
                done = {i: r for i, r in store.read_cells().items()
                        if i in planned and _reusable(r)}
                manifest = _start_manifest(store, loaded, cells, executor_name, env, done)
                manifest["cell_threads"] = env.threads
                manifest["deterministic"] = env.deterministic
                manifest["sessions"][-1].update(runner.describe())  # e.g. the local workers
                store.write_manifest(manifest)
                bar = CellProgress(len(cells), already_ok=len(done), enabled=env.progress)
                runner.run(cells, done, env, _journal(store, manifest), bar)
            status = None
        except KeyboardInterrupt:
            if manifest is None:
                raise  # nothing of this session written yet: nothing to mark
        finally:  # also on an error while journaling: the run is then marked interrupted
            if bar is not None:
                bar.close()
            if manifest is not None:
                n_ok, n_failed, status, tables = _finish(store, manifest, planned, status)
    if report:
        from bench.report import write_report

        write_report(store.dir, tables=tables)  # the tables just written, not read back
    return RunOutcome(store.dir, n_ok, n_failed, status)


def _journal(store: RunStore, manifest: dict):
    """The executor's `on_done`: each finished cell journaled at once, the manifest told."""
    session = len(manifest["sessions"]) - 1

    def on_done(record: CellRecord) -> None:
        store.write_cell(record)
        manifest["cells"][record.id].update(status=record.status, reason=record.reason,
                                            session=session)
        store.write_manifest(manifest)

    return on_done


def _finish(store: RunStore, manifest: dict, planned: dict[str, Cell],
            status: str | None) -> tuple[int, int, str, dict]:
    """Tables from the journal (written, and returned), the manifest's final status and
    counts."""
    journal = store.read_cells()
    # In plan order (the suite's order), not the journal's (file names, by id).
    finished = {i: journal[i] for i in planned if i in journal}
    tables = build_tables(finished)
    store.write_tables(tables)
    n_ok = sum(r.ok for r in finished.values())
    n_failed = sum(not r.ok for r in finished.values())
    if status is None:
        status = "complete" if n_failed == 0 and n_ok == len(planned) else "failed"
    session = len(manifest["sessions"]) - 1
    for cell_id, record in finished.items():  # journaled just before an interrupt: say so
        if manifest["cells"][cell_id]["status"] != record.status:
            manifest["cells"][cell_id].update(status=record.status, reason=record.reason,
                                              session=session)
    manifest.update(status=status, finished_utc=provenance.utc_now(),
                    counts={"ok": n_ok, "failed": n_failed, "total": len(planned)},
                    checkpoint_notes=checkpoint_notes(tables))
    manifest["sessions"][-1].update(status=status, finished_utc=manifest["finished_utc"])
    store.write_manifest(manifest)
    return n_ok, n_failed, status, tables


def choose_run_dir(suite_dir: Path, loaded: LoadedSuite, run_id: str | None, resume: bool,
                   code: dict, reuse_other_code: bool = False) -> Path:
    """An explicit --run-id, else the newest unfinished run of the same suite text and bench
    code, else a new one. A run made by other code is resumed only with `reuse_other_code`."""
    if run_id is not None:
        run_dir = suite_dir / run_id
        if (run_dir / "manifest.json").exists():
            old = RunStore(run_dir).read_manifest()
            if old.get("suite", {}).get("sha256") != loaded.sha256:
                raise UserError(f"{run_dir}: this run was made from a different version of "
                                f"{loaded.path}; pass a new --run-id")
            if not resume:
                raise UserError(f"{run_dir}: already exists; drop --no-resume to resume it or "
                                "pass a new --run-id")
            if not (reuse_other_code or _same_code(old, code)):
                raise UserError(f"{run_dir}: this run was made by other bench code (source "
                                f"{_code_of(old)[:12]}, now {code['source_sha256'][:12]}); pass "
                                "a new --run-id, or --reuse-other-code to resume it anyway")
        return run_dir
    if resume and suite_dir.is_dir():
        for run_dir in sorted((p for p in suite_dir.iterdir() if p.is_dir()), reverse=True):
            path = run_dir / "manifest.json"
            if not path.exists():
                continue
            old = RunStore(run_dir).read_manifest()
            if (old.get("suite", {}).get("sha256") == loaded.sha256
                    and old.get("status") != "complete"
                    and (reuse_other_code or _same_code(old, code))):
                return run_dir
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir, k = suite_dir / stamp, 1
    while run_dir.exists():
        k += 1
        run_dir = suite_dir / f"{stamp}-{k}"
    return run_dir


def _code_of(manifest: dict) -> str:
    """The source hash of the code of a run's latest session ("" for runs before it was kept)."""
    sessions = manifest.get("sessions") or [{}]
    return str((sessions[-1].get("code") or {}).get("source_sha256", ""))


def _same_code(manifest: dict, code: dict) -> bool:
    return _code_of(manifest) == code["source_sha256"]


def _reusable(record: CellRecord) -> bool:
    """A finished cell counts as done only if its artefacts (e.g. trained weights) still exist."""
    return record.ok and all(Path(p).exists() for p in record.artifacts.values())


def _start_manifest(store: RunStore, loaded: LoadedSuite, cells: list[Cell], executor: str,
                    env: RunEnv, done: dict[str, CellRecord]) -> dict:
    """A new manifest, or a resumed run's with one more session. What earlier sessions
    recorded (their provenance, and which session made each finished cell) is kept as it was."""
    now = provenance.utc_now()
    session = {"started_utc": now, "executor": executor, "pid": os.getpid(),
               "resumed_cells": len(done), "status": "running", "code": env.code,
               "reuse_other_code": env.reuse_other_code,
               "provenance": provenance.collect(env.device, Path(__file__).resolve().parent.parent)}
    old = store.read_manifest() if store.manifest_path.exists() else {}
    old_cells = old.get("cells", {})
    cell_entries = {}
    for c in cells:
        entry = {"kind": c.kind, "label": c.label, "deps": c.deps, "status": "pending",
                 "reason": None, "session": None}
        if c.id in done:
            entry |= {"status": done[c.id].status, "session": old_cells.get(c.id, {}).get("session", 0)}
        cell_entries[c.id] = entry
    return {
        "schema_version": SCHEMA_VERSION,
        "bench_version": __version__,
        "run_id": store.dir.name,
        "suite": {"name": loaded.suite.suite.name, "path": str(loaded.path),
                  "sha256": loaded.sha256, "text": loaded.text},
        "status": "running",
        "started_utc": old.get("started_utc", now),
        "finished_utc": None,
        "sessions": old.get("sessions", []) + [session],
        "seeds": loaded.suite.suite.seeds,
        "executor": executor,
        # The first session's; each session keeps its own, and each cell names its session.
        "provenance": old.get("provenance", session["provenance"]),
        "code": old.get("code", env.code),
        "inputs": content_hashes(cells),
        "cells": cell_entries,
    }


def content_hashes(cells: list[Cell]) -> dict[str, str]:
    """sha256 of every file the suite points to (checkpoints, Inception weights), by suite key:
    paths are machine-local, so identity (and this record) is what the files hold."""
    out = {}
    for c in cells:
        source = getattr(c.config, "source", None)
        if isinstance(source, UserSource) and source.checkpoint_sha256:
            out[f"models.{c.config.model}.checkpoint"] = source.checkpoint_sha256
        if isinstance(source, RobustBenchSource) and source.checkpoint_sha256:
            out[f"models.{c.config.model}.robustbench"] = source.checkpoint_sha256
        if isinstance(c.config, GanCellConfig) and c.config.inception_weights_sha256:
            out["suite.inception_weights"] = c.config.inception_weights_sha256
    return out
