"""Sample shards: a robustness cell cut into cells of whole batches, merged into rows that
equal the unsharded cell's, whatever the shard size, the shards' order or the executor; a
killed run redoes only the unfinished shards; the per-example records; bad input."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cells import RunEnv
from bench.cells.robustness import summary_records
from bench.cli import main
from bench.data import load_dataset
from bench.data.sizes import count_examples
from bench.executors.execute import TEST_KILL_ONCE_ENV
from bench.identity import CHECKS_ROLE, SHARD_ROLE
from bench.runner import run_suite
from bench.store import schema as S
from bench.store.run_store import RunStore
from bench.suite.cell_configs import DatasetSpec
from bench.suite.load import load_suite
from bench.suite.plan import plan
from bench.suite.shards import shard_ranges
from tests.helpers import formats
from tests.helpers.suites import write_suite
from tests.helpers.tables import comparable_tables

SUITE = """
[suite]
name = "sharded"
seeds = [0]
device = "cpu"

[datasets.digits]
kind = "digits"
limit_train = 300

[models.cnn]
arch = "small-cnn"
dataset = "digits"
train = {{ epochs = 1 }}

[[robustness]]
models = ["cnn"]
attack = "fgsm"
epsilons = [0, 0.1, 0.3]
limit = 200
batch_size = 32
{shard}

[[robustness]]
models = ["cnn"]
attack = "pgd"
steps = 3
epsilons = [0.1, 0.2]
limit = 200
batch_size = 32
{shard}

[[robustness]]
models = ["cnn"]
attack = "autoattack"
epsilons = [0.3]
limit = 24
batch_size = 8
{shard}
"""
# Cells per variant: the training, one cell per attack, and the shards of each attack.
SHARDINGS = {"plain": "", "size50": "shard_size = 50", "three": "shards = 3"}


def run(folder: Path, shard: str, cache: Path, **options):
    suite = write_suite(folder, SUITE.format(shard=shard))
    return run_suite(suite, results_dir=folder / "results", cache_dir=cache, run_id="run",
                     progress=False, report=False, **options)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The suite unsharded and sharded two ways, in-process; once more on 2 worker processes."""
    root = tmp_path_factory.mktemp("shards")
    cache = root / "cache"  # one training, reused by every variant
    out = {name: run(root / name, shard, cache, executor="local",
                     executor_options={"workers": 1}) for name, shard in SHARDINGS.items()}
    out["parallel"] = run(root / "parallel", SHARDINGS["size50"], cache, executor="local",
                          executor_options={"workers": 2})
    assert all(o.status == "complete" for o in out.values()), {k: o.status for k, o in out.items()}
    return {name: o.run_dir for name, o in out.items()}


def without_cell_ids(run_dir: Path) -> dict[str, pd.DataFrame]:
    """The tables that must not depend on sharding, without the shard cells' own ids."""
    tables = comparable_tables(run_dir, drop=(S.CELL_ID,))
    return {name: df for name, df in tables.items() if name not in (S.CELLS, S.SHARDS)}


@pytest.mark.parametrize("variant", ["size50", "three", "parallel"])
def test_merged_rows_equal_the_unsharded_rows(runs, variant):
    plain, sharded = without_cell_ids(runs["plain"]), without_cell_ids(runs[variant])
    assert sorted(sharded) == sorted(plain)
    for name in plain:  # every accuracy, n, interval, worst case, check, example: exactly
        pd.testing.assert_frame_equal(sharded[name], plain[name], check_exact=True, obj=name)
    rob = plain[S.ROBUSTNESS]
    assert set(rob["attack"]) == {"fgsm", "pgd", "autoattack"}
    # Not vacuous: PGD has random starts, and every attack breaks some examples.
    assert (rob[rob["epsilon"] > 0]["robust_acc"] < rob[rob["epsilon"] > 0]["clean_acc"]).all()


def test_shards_are_cells_and_the_merged_cell_keeps_the_unsharded_id(runs):
    cells = {name: RunStore(d).read_table(S.CELLS) for name, d in runs.items()}
    plain = set(cells["plain"][S.CELL_ID])
    merged = cells["size50"][cells["size50"]["kind"] == "robustness"]
    assert set(merged[S.CELL_ID]) <= plain  # compare matches a sharded run to an unsharded one
    shards = RunStore(runs["size50"]).read_table(S.SHARDS)
    # 200 examples at batch 32 in shards of 50 rounded up to 64; 24 at batch 8 in 56s: one.
    by_attack = shards.groupby("attack")["n"].apply(list).to_dict()
    assert by_attack == {"fgsm": [64, 64, 64, 8], "pgd": [64, 64, 64, 8], "autoattack": [24]}
    assert (shards["start"] % shards["batch_size"] == 0).all()  # whole batches
    three = RunStore(runs["three"]).read_table(S.SHARDS)
    assert three.groupby("attack")["shard"].count().to_dict() == {
        "fgsm": 3, "pgd": 3, "autoattack": 3}
    assert (shards["examples_per_s"] > 0).all() and set(shards["device"]) == {"cpu"}


def test_model_checks_run_beside_the_shards_and_the_merge_only_reports_them(runs):
    """The model-level checks need no attack result: in a sharded run they are a cell of their
    own that waits only for the model, so the shards and the checks share the workers; the
    merging cell's `checks` rows are that cell's (equal to the unsharded cell's: above)."""
    journal = RunStore(runs["size50"]).read_cells()
    train = next(r for r in journal.values() if r.kind == "train")
    # One per set of model-level checks: the FGSM section's (batch 32, PGD's shares it) and
    # AutoAttack's (batch 8), as unsharded.
    checks = [r for r in journal.values() if r.kind == "robustness-checks"]
    assert sorted(r.config["attack"] for r in checks) == ["autoattack", "fgsm"]
    merges = [r for r in journal.values() if r.kind == "robustness"]
    for part in checks:
        assert part.deps == {"model": train.id}
        (merge,) = [m for m in merges if m.deps.get(CHECKS_ROLE) == part.id]
        assert merge.config["attack"] == part.config["attack"]
        assert merge.records[S.CHECKS][:3] == part.records[S.MODEL_CHECK_PART]
        assert {r["check"] for r in part.records[S.MODEL_CHECK_PART]} == {
            "deterministic_predictions", "gradient_saturation", "unbounded_epsilon"}
    (pgd,) = [m for m in merges if m.config["attack"] == "pgd"]
    assert CHECKS_ROLE not in pgd.deps and S.CHECKS not in pgd.records
    assert S.MODEL_CHECK_PART not in RunStore(runs["size50"]).table_names()


def test_the_merge_does_not_depend_on_the_order_shards_finish_in(runs, tmp_path):
    store = RunStore(runs["three"])
    journal = store.read_cells()
    merge = next(r for r in journal.values() if r.kind == "robustness"
                 and r.config["attack"] == "pgd")
    cell = next(c for c in plan(load_suite(Path(runs["three"]).parents[2] / "suite.toml"))
                if c.id == merge.id)
    shards = [(role, journal[dep]) for role, dep in merge.deps.items() if role.startswith(SHARD_ROLE)]
    env = RunEnv(device="cpu", cache_dir=tmp_path, artifacts_dir=tmp_path, progress=False)
    outs = []
    for seed in (0, 1):  # the blocks handed over in two other orders
        order = shards[:]
        random.Random(seed).shuffle(order)
        blocks = [b for _, r in order for b in r.records[S.EXAMPLE_BLOCKS]]
        costs = [c for _, r in order for c in r.records[S.SHARDS]]
        outs.append(summary_records(cell.config, {}, env, blocks, costs))
    for table in (S.ROBUSTNESS, S.CORRECTNESS):
        for a, b, recorded in zip(outs[0][table], outs[1][table], merge.records[table]):
            assert drop_timing(a) == drop_timing(b) == drop_timing(recorded)
    with pytest.raises(Exception, match="expected the records of 3 shard"):
        summary_records(cell.config, {}, env, blocks, costs[:2])


def drop_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("seconds", "images_per_s")}


def test_examples_table_holds_every_example_and_matches_the_rows(runs):
    store = RunStore(runs["size50"])
    examples, rob = store.read_table(S.EXAMPLES), store.read_table(S.ROBUSTNESS)
    assert not (store.tables_dir / "examples.csv").exists()  # Parquet only
    attacked = examples[examples["attack"] != "worst_case"]
    for _, r in rob.iterrows():
        mine = attacked[(attacked["attack"] == r["attack"]) & (attacked["epsilon"] == r["epsilon"])]
        assert len(mine) == r["n"] and mine["position"].tolist() == list(range(r["n"]))
        assert mine["robust"].mean() == r["robust_acc"] and mine["clean_correct"].mean() == r["clean_acc"]
        assert mine["linf"].max() == pytest.approx(r["linf_max"], abs=0)
    # The example index is the dataset's: the seeded limit subset of the test split.
    test = load_dataset(DatasetSpec(name="digits", kind="digits", limit_train=300), "test")
    fgsm = attacked[(attacked["attack"] == "fgsm") & (attacked["epsilon"] == 0)]
    assert fgsm["example"].is_monotonic_increasing and fgsm["example"].max() < len(test)
    assert (test.y[fgsm["example"].to_numpy()].numpy() == fgsm["label"].to_numpy()).all()
    # The per-example worst case, averaged, is the worst_case table's robust accuracy.
    worst = examples[examples["attack"] == "worst_case"]
    table = store.read_table(S.WORST_CASE)
    for _, w in table.iterrows():
        mine = worst[(worst["data_fingerprint"] == w["data_fingerprint"])
                     & (worst["epsilon"] == w["epsilon"])]
        assert len(mine) == w["n"] and mine["robust"].mean() == pytest.approx(w["robust_acc"])


def test_a_killed_run_redoes_only_the_unfinished_shards(tmp_path):
    """In-process: the driver itself dies at the start of the third FGSM shard."""
    head, fgsm, *_ = SUITE.format(shard="shard_size = 50").split("[[robustness]]")
    suite = write_suite(tmp_path, head + "[[robustness]]" + fgsm)
    cells = plan(load_suite(suite))
    shard_cells = [c for c in cells if c.kind == "robustness-shard"]
    markers = tmp_path / "markers"
    markers.mkdir()
    for c in cells:
        if c is not shard_cells[2]:
            (markers / f"{c.id}.killed").touch()  # spared: only the third shard kills
    cmd = [sys.executable, "-m", "bench", "run", str(suite), "--results-dir",
           str(tmp_path / "results"), "--workers", "1", "--no-progress", "--no-report"]
    env = os.environ | {TEST_KILL_ONCE_ENV: str(markers)}
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == -9, first.stderr  # SIGKILL: nothing could clean up
    (run_dir,) = (tmp_path / "results" / "sharded").iterdir()
    before = {p.name: p.read_bytes() for p in (run_dir / "cells").glob("*.json")}
    assert {f"{c.id}.json" for c in shard_cells[:2]} <= set(before)
    assert f"{shard_cells[2].id}.json" not in before

    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    after = {p.name: p.read_bytes() for p in (run_dir / "cells").glob("*.json")}
    assert len(after) == len(cells)
    assert all(after[name] == data for name, data in before.items())  # not recomputed
    sessions = RunStore(run_dir).read_manifest()["cells"]
    redone = {c.id for c in cells if sessions[c.id]["session"] == 1}
    assert redone == {c.id for c in cells if f"{c.id}.json" not in before}
    assert {c.id for c in shard_cells[2:]} | {c.id for c in cells if c.kind == "robustness"} \
        <= redone and not redone & {c.id for c in shard_cells[:2]}


# -- how shards are cut ------------------------------------------------------------------

@pytest.mark.parametrize("n, batch, size, count, expected", [
    (200, 32, 50, None, [(0, 64), (64, 128), (128, 192), (192, 200)]),  # rounded up to batches
    (200, 32, 64, None, [(0, 64), (64, 128), (128, 192), (192, 200)]),
    (200, 32, None, 3, [(0, 96), (96, 192), (192, 200)]),
    (10, 4, None, 7, [(0, 4), (4, 8), (8, 10)]),  # more shards than batches: one batch each
    (3, 1, None, 10, [(0, 1), (1, 2), (2, 3)]),  # more shards than examples: they shrink
    (100, 512, 1, None, [(0, 100)]),
])
def test_shard_ranges(n, batch, size, count, expected):
    assert shard_ranges(n, batch, shard_size=size, shards=count) == expected


@pytest.mark.parametrize("keys, message", [
    ("shard_size = 0", "robustness[0].shard_size (line 12): input should be greater than 0, got 0"),
    ("shard_size = -5", "robustness[0].shard_size (line 12): input should be greater than 0"),
    ("shards = 0", "robustness[0].shards (line 12): input should be greater than 0, got 0"),
    ("shard_size = 100\nshards = 2", "robustness[0].shards (line 13): set shard_size or shards, "
                                     "not both"),
    ("shard_size = 1.5", "robustness[0].shard_size (line 12): input should be a valid integer"),
])
def test_bad_shard_keys_are_one_line_errors(tmp_path, capsys, keys, message):
    suite = write_suite(tmp_path, f"""[suite]
name = "bad"
[datasets.digits]
kind = "digits"
[models.cnn]
arch = "small-cnn"
dataset = "digits"
[[robustness]]
models = ["cnn"]
epsilons = [0.1]
limit = 10
{keys}
""")
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bench: error: {suite}: {message}"), err
    assert err.count("\n") == 1


def test_validate_lists_the_shards(tmp_path, capsys):
    suite = write_suite(tmp_path, SUITE.format(shard="shards = 3"))
    assert main(["validate", str(suite)]) == 0
    # Two sets of model checks: batch 32 (FGSM, PGD) and batch 8 (AutoAttack).
    assert "2 robustness-checks, 9 robustness-shard, 3 robustness" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["digits", "mnist", "cifar10", "svhn", "folder", "folder-split"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_example_counts_from_the_files_equal_the_loaders(tmp_path, kind, split):
    """The plan counts examples from file headers and listings; the loaders read them."""
    root = {"digits": lambda: None,
            "mnist": lambda: formats.write_mnist(tmp_path, n_train=30, n_test=17),
            "cifar10": lambda: formats.write_cifar10(tmp_path, n_per_batch=7),
            "svhn": lambda: formats.write_svhn(tmp_path, n_train=13, n_test=9),
            "folder": lambda: formats.write_imagefolder(tmp_path, n_per_class=9),
            "folder-split": lambda: formats.write_imagefolder(tmp_path, n_per_class=5,
                                                              with_splits=True)}[kind]()
    spec = {"name": "d", "kind": "imagefolder" if kind.startswith("folder") else kind,
            **({"root": str(root)} if root else {})}
    for limit in (None, 3):
        cfg = DatasetSpec(**spec, **({f"limit_{split}": limit} if limit else {}))
        assert count_examples(cfg, split) == len(load_dataset(cfg, split)), (kind, split, limit)
    if kind == "digits":  # another split fraction too
        cfg = DatasetSpec(name="d", kind="digits", test_fraction=0.37)
        assert count_examples(cfg, split) == len(load_dataset(cfg, split))


def test_examples_are_stored_compactly():
    """10,000 examples at 7 ε in about a megabyte of journal, not tens of megabytes."""
    from bench.store.examples import block_row, unpack_array

    rng = np.random.default_rng(0)
    arrays = {"index": np.arange(10_000), "label": rng.integers(0, 10, 10_000),
              "clean_pred": rng.integers(0, 10, 10_000), "adv_pred": rng.integers(0, 10, 10_000),
              "linf": np.full(10_000, 8 / 255, np.float32), "l2": rng.random(10_000, np.float32)}
    columns = S.COLUMNS[S.EXAMPLE_BLOCKS]
    ident = {k: None for k in columns[:columns.index("start")] if k != "epsilon"}
    row = block_row(ident, epsilon=0.1, start=0, arrays=arrays, attack_repr="", attack_params="{}",
                    alpha_used=None)
    assert sum(len(str(v)) for v in row.values()) < 150_000
    for k, v in arrays.items():
        assert np.array_equal(unpack_array(row[k]), v) and unpack_array(row[k]).dtype == v.dtype


def test_compare_names_the_examples_a_candidate_lost(runs, tmp_path, capsys):
    """A copy of a run with three examples flipped to broken: compare lists exactly those
    (against the run it was copied from, so that nothing else, timing included, differs)."""
    from tests.helpers.runs import copy_run, edit_table

    base = Path(runs["size50"])
    cand = copy_run(base, tmp_path / "cand")
    flipped = {}

    def lose_three(df: pd.DataFrame) -> pd.DataFrame:
        pgd = df.index[(df["attack"] == "pgd") & (df["epsilon"] == 0.1) & df["robust"]][:3]
        flipped["examples"] = sorted(df.loc[pgd, "example"].astype(int))
        df.loc[pgd, "robust"] = False
        return df

    edit_table(cand, S.EXAMPLES, lose_three)
    code = main(["compare", str(base), str(cand)])
    out = capsys.readouterr().out
    assert code == 0, out  # not a verdict: the accuracies themselves did not change
    (line,) = [ln for ln in out.splitlines() if "lost, 0 gained since the baseline" in ln]
    assert line.strip().startswith("examples: 3 of 200 lost") and "attack=pgd" in line
    assert line.endswith(", ".join(map(str, flipped["examples"])))
    main(["compare", str(runs["plain"]), str(runs["three"])])  # sharded the other way
    assert " lost, " not in capsys.readouterr().out  # identical examples: nothing moved
