"""The run store: atomic writes, journal round trip, tables, the run lock, aggregates."""

import math
import os

import pandas as pd
import pytest

from bench.analysis.aggregate import aggregate_over_seeds
from bench.errors import UserError
from bench.store.atomic import atomic_open, atomic_write_text
from bench.store.lock import RunLock
from bench.store.run_store import CellRecord, RunStore


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.json"]  # no temp file left behind


def test_an_interrupt_right_after_the_temp_file_exists_leaves_nothing(tmp_path, monkeypatch):
    """A Ctrl-C whose handler runs just after the temp file is created, before its name is
    handed back (the window tempfile.mkstemp had): the file goes all the same."""
    from bench.store import atomic

    path = tmp_path / "x.json"
    atomic_write_text(path, "old")
    real_open = os.open

    def open_then_interrupted(*args, **kwargs):
        fd = real_open(*args, **kwargs)
        os.close(fd)
        raise KeyboardInterrupt("signal 2")

    monkeypatch.setattr(atomic.os, "open", open_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["x.json"]


def test_the_written_file_is_private_as_mkstemp_made_it(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_text(path, "data")
    assert path.stat().st_mode & 0o777 == 0o600


def test_journal_round_trip_keeps_floats_exact(tmp_path):
    store = RunStore(tmp_path)
    value = 0.1 + 0.2  # not representable in a short decimal: must survive unrounded
    rec = CellRecord(id="abc", kind="robustness", label="l", config={"seed": 0}, deps={},
                     status="ok", records={"robustness": [{"robust_acc": value, "nan": math.nan}]})
    store.write_cell(rec)
    back = store.read_cells()["abc"]
    assert back.records["robustness"][0]["robust_acc"] == value
    assert math.isnan(back.records["robustness"][0]["nan"])


def test_tables_written_as_parquet_and_csv(tmp_path):
    store = RunStore(tmp_path)
    df = pd.DataFrame({"a": [1, 2], "b": [0.1 + 0.2, 1 / 3]})
    store.write_tables({"t": df})
    assert (tmp_path / "tables" / "t.csv").exists()
    pd.testing.assert_frame_equal(store.read_table("t"), df)


def test_missing_run_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a bench run folder"):
        RunStore(tmp_path / "nope").read_manifest()


def test_second_lock_on_same_run_folder_fails_clearly(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(UserError, match="another bench run"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # free again once the first holder is gone


def test_aggregate_over_seeds_mean_std_ci():
    df = pd.DataFrame({"model": ["m"] * 3, "epsilon": [0.1] * 3, "seed": [0, 1, 2],
                       "robust_acc": [0.5, 0.6, 0.7]})
    agg = aggregate_over_seeds(df, ["model", "epsilon"], ["robust_acc"])
    row = agg.iloc[0]
    assert row["n_seeds"] == 3
    assert row["robust_acc_mean"] == pytest.approx(0.6)
    assert row["robust_acc_std"] == pytest.approx(0.1)
    # t(0.975, 2) = 4.3027; half-width = 4.3027 * 0.1 / sqrt(3)
    assert row["robust_acc_ci_high"] - row["robust_acc_mean"] == pytest.approx(4.302653 * 0.1 / 3 ** 0.5, rel=1e-5)
