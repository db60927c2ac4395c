"""Compare the tables of two runs, apart from the columns allowed to differ (wall-clock)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.store.run_store import RunStore

# What a throughput row measures: all of it is timing (or memory, measured alike).
THROUGHPUT_MEASURED = {"times_s", "median_s", "q1_s", "q3_s", "iqr_s", "achieved_tflops",
                       "peak_tflops", "mfu", "peak_memory_bytes"}


def timing_column(name: str) -> bool:
    """Wall-clock columns, and where a cell ran, the only ones allowed to differ between
    executors: start and end times, `seconds`, `eval_seconds`..., rates (`images_per_s`...),
    throughput measurements, and the `host` (machine and Ray node) a cell ran on."""
    return (name in {"started_utc", "finished_utc", "host"} or name.endswith("seconds")
            or "per_s" in name or name in THROUGHPUT_MEASURED)


def comparable_tables(run_dir: Path, drop: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    store = RunStore(run_dir)
    tables = {}
    for name in store.table_names():
        df = store.read_table(name)
        tables[name] = df.drop(columns=[c for c in df.columns if timing_column(c) or c in drop])
    return tables


def assert_same_tables(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for name in expected:
        # Exact: accuracies are counts / n, and both runs use the same thread count.
        pd.testing.assert_frame_equal(actual[name], expected[name], check_exact=True, obj=name)
