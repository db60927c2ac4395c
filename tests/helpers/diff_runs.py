"""Are two run folders the same, timing aside? Tables, journal, manifest and report compared.

    python -m tests.helpers.diff_runs RUN_A RUN_B      # from the repository root; exit 0 = same

Used to prove that a refactor changed no result: every table must be equal cell for cell
(NaN equal to NaN, same column order and dtypes) once the columns that measure time are
dropped; the manifest equal once times, sessions and code/provenance identity are dropped;
report.md equal line by line except the lines that print times or timing tables.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

import pandas as pd

# Columns that measure time or depend on the machine's speed, or name the code that ran.
TIMING_COLUMNS = {
    "seconds", "images_per_s", "train_images_per_s", "examples_per_s", "eval_seconds", "times_s",
    "median_s",
    "q1_s", "q3_s", "iqr_s", "achieved_tflops", "mfu", "peak_tflops", "peak_source",
    "peak_memory_bytes", "started_utc", "finished_utc", "weights_code_sha256",
}
MANIFEST_VOLATILE = {"started_utc", "finished_utc", "sessions", "provenance", "code", "run_id"}
# Report lines that print times or timing tables (the throughput section is all timing).
REPORT_VOLATILE = re.compile(r"wall time|Started|seconds|images/s|img/s|GFLOP|MFU|ms\b|MiB|"
                             r"plots/|data:image|Throughput|\| (inference|train-step|fgsm|pgd|"
                             r"gan-step|gan-sample) \||^[-+]\| (train|robustness|gan|extractor|"
                             r"throughput) \| (ok|failed) \||git_commit|python_executable")


def diff_tables(a: Path, b: Path) -> list[str]:
    out = []
    names_a = {p.stem for p in (a / "tables").glob("*.parquet")}
    names_b = {p.stem for p in (b / "tables").glob("*.parquet")}
    if names_a != names_b:
        out.append(f"tables differ: {sorted(names_a ^ names_b)}")
    for name in sorted(names_a & names_b):
        ta, tb = (pd.read_parquet(r / "tables" / f"{name}.parquet") for r in (a, b))
        ta, tb = (t.drop(columns=[c for c in t.columns if c in TIMING_COLUMNS]) for t in (ta, tb))
        if name.endswith("_agg"):  # aggregates of timing columns are timing too
            ta, tb = (t.drop(columns=[c for c in t.columns if _is_timing_aggregate(c)])
                      for t in (ta, tb))
        try:
            pd.testing.assert_frame_equal(ta, tb, check_exact=True)
        except AssertionError as exc:
            out.append(f"table {name}: {' '.join(str(exc).split())[:400]}")
    return out


def _is_timing_aggregate(column: str) -> bool:
    return any(column.startswith(f"{c}_") for c in TIMING_COLUMNS)


def diff_journal(a: Path, b: Path) -> list[str]:
    ja = {p.name: _journal_entry(p) for p in (a / "cells").glob("*.json")}
    jb = {p.name: _journal_entry(p) for p in (b / "cells").glob("*.json")}
    out = [f"journal: cells only in one run: {sorted(set(ja) ^ set(jb))}"] if ja.keys() != jb.keys() else []
    out += [f"journal {name} differs" for name in sorted(set(ja) & set(jb)) if ja[name] != jb[name]]
    return out


def _journal_entry(path: Path) -> dict:
    entry = json.loads(path.read_text())
    for key in ("started_utc", "finished_utc", "seconds"):
        entry.pop(key, None)
    entry["records"] = {t: [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]
                        for t, rows in entry.get("records", {}).items()}
    entry["artifacts"] = sorted(entry.get("artifacts", {}))  # paths are per run folder
    return entry


def diff_manifest(a: Path, b: Path) -> list[str]:
    ma, mb = (json.loads((r / "manifest.json").read_text()) for r in (a, b))
    ma, mb = ({k: v for k, v in m.items() if k not in MANIFEST_VOLATILE} for m in (ma, mb))
    return [] if ma == mb else [f"manifest differs in {sorted(k for k in ma if ma[k] != mb.get(k))}"]


def diff_report(a: Path, b: Path) -> list[str]:
    if not (a / "report.md").exists() or not (b / "report.md").exists():
        return []
    la, lb = ((r / "report.md").read_text().splitlines() for r in (a, b))
    return [f"report.md: {line}" for line in difflib.unified_diff(la, lb, lineterm="", n=0)
            if line[:1] in "+-" and line[:3] not in ("+++", "---")
            and not REPORT_VOLATILE.search(line)]


def diff_runs(a: Path, b: Path) -> list[str]:
    return diff_tables(a, b) + diff_journal(a, b) + diff_manifest(a, b) + diff_report(a, b)


def main(argv: list[str] | None = None) -> int:
    a, b = (Path(p) for p in (argv or sys.argv[1:]))
    problems = diff_runs(a, b)
    print("\n".join(problems) if problems else f"same, timing aside: {a} and {b}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
