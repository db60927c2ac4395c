"""The runs of a suite folder: which are complete, in which order, and which are in the window.

Order: by the commit graph when every run's commit is in the git history of `repo`
(parents before children; runs of one commit by start time), else by start time. The window
(--since DATE|RUN, --last N) is taken after ordering.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import UserError

COMPLETE = "complete"


@dataclass(frozen=True)
class RunInfo:
    """What history needs of a run's manifest."""

    run_id: str  # the folder name
    started_utc: str
    status: str
    commit: str | None
    dirty: bool | None
    device: str  # e.g. "cpu", "cuda:0"
    device_name: str  # e.g. the CPU model or the GPU name
    schema_version: object  # as recorded; checked by bench.store.migrate when read

    @property
    def short_commit(self) -> str:
        if not self.commit:
            return "?"
        return self.commit[:10] + ("+dirty" if self.dirty else "")

    @property
    def started(self) -> datetime:
        return parse_time(self.started_utc, f"run {self.run_id}: started_utc")


@dataclass(frozen=True)
class Ordering:
    runs: list[RunInfo]
    by: str  # "commit" or "time"
    note: str  # why, for the output


def run_dirs(suite_dir: Path) -> list[Path]:
    """Sub-folders that hold a manifest.json (anything else is not a run)."""
    if not suite_dir.is_dir():
        raise UserError(f"{suite_dir}: no such suite results folder "
                        "(expected RESULTS_DIR/<suite>, holding one folder per run)")
    with os.scandir(suite_dir) as entries:
        dirs = [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
    return sorted(d for d in dirs if (d / "manifest.json").is_file())


def run_info(manifest: dict, run_id: str) -> RunInfo:
    prov = manifest.get("provenance") or {}
    device = prov.get("device") or {}
    git = prov.get("git") or {}
    return RunInfo(run_id=run_id, started_utc=str(manifest.get("started_utc") or ""),
                   status=str(manifest.get("status") or "unknown"),
                   commit=git.get("commit") or None, dirty=git.get("dirty"),
                   device=str(device.get("device") or "?"),
                   device_name=str(device.get("device_name") or "?"),
                   schema_version=manifest.get("schema_version"))


def read_manifest(run_dir: Path) -> dict:
    path = run_dir / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read the manifest ({exc})") from None


def order_runs(runs: list[RunInfo], repo: Path | None) -> Ordering:
    by_time = sorted(runs, key=lambda r: (r.started, r.run_id))
    if repo is None:
        return Ordering(by_time, "time", "by start time")
    commits = sorted({r.commit for r in runs if r.commit})
    if not commits or len(commits) < len({r.commit for r in runs}):
        return Ordering(by_time, "time", "by start time (some runs record no git commit)")
    position = commit_positions(commits, repo)
    if position is None:
        return Ordering(by_time, "time", f"by start time (not every run's commit is in the git "
                                         f"history of {repo})")
    ordered = sorted(runs, key=lambda r: (position[r.commit], r.started, r.run_id))
    return Ordering(ordered, "commit", f"by commit (git history of {repo}), then start time")


def commit_positions(commits: list[str], repo: Path) -> dict[str, int] | None:
    """Topological position of each commit (parents first), or None if git cannot tell."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-list", "--topo-order", "--reverse",
                              *commits, "--"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    position = {c: i for i, c in enumerate(out.stdout.split())}
    return position if all(c in position for c in commits) else None


def window(runs: list[RunInfo], since: str | None, last: int | None) -> list[RunInfo]:
    """The runs from `since` (a run id, or a date or time in ISO 8601) on, then the last N."""
    if since:
        ids = [r.run_id for r in runs]
        if since in ids:
            runs = runs[ids.index(since):]
        else:
            start = parse_time(since, "--since", hint=" or the id of a complete run")
            runs = [r for r in runs if r.started >= start]
    if last is not None:
        if last < 1:
            raise UserError(f"--last: expected a positive number of runs, got {last}")
        runs = runs[-last:]
    return runs


def parse_time(text: str, what: str, hint: str = "") -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{what}: expected a date or time like 2025-01-31 or "
                        f"2025-01-31T12:00:00+00:00{hint}, got {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)
