"""Wall time of an AutoAttack cell cut into sample shards against the same cell unsharded.

The workload is what the issue names: AutoAttack standard at ε = 8/255 on CIFAR-sized inputs
through a CIFAR ResNet-18 (`bench.models.zoo:cifar10_resnet18`, random weights saved as a
user checkpoint: fine for timing), on `--images` test images written in CIFAR-10's own
pickle format and loaded by bench's real loader. With random weights the model is right on
about 10% of the images, and AutoAttack attacks only those: the attack is then a small part of
the cell, and its fixed parts (loading, the clean pass, the model-level checks on 256 examples,
which a sharded run gives a cell of its own) weigh more than on a trained model. Labelling the
images with a random model's own predictions does not help: its survivors of APGD-CE go on to
Square's 5,000 queries each (minutes per image on a CPU). Each round runs, as the commands a user
types (a fresh `bench run` process each, every default kept but the ones named):

    unsharded            the cell as one unit (threads = 1, the default: one core)
    unsharded, all cores the same with [suite] threads = "all" (the simplest way to give one
                         cell every core, without shards)
    sharded              `shards = --shards` on the local executor's default workers

in an order rotated by the round. It reports the wall time of each command and of the cell
itself (first shard started to merged cell finished, from the journal), the ratio sharded /
unsharded, and the sharding overhead: the shards' summed attack time over the unsharded
cell's. Then it checks that every non-timing column of the robustness rows is identical.

    python benchmarks/shard_wall.py                     # 1024 images, 4 shards, 2 rounds
    python benchmarks/shard_wall.py --images 2048 --shards 8 --rounds 3

Targets (issue 22): sharded <= 0.6x unsharded on 2 cores; overhead <= 1.10x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import machine_lines, quartiles  # noqa: E402
from tests.helpers.formats import write_cifar10  # noqa: E402
from tests.helpers.tables import comparable_tables  # noqa: E402

SUITE = """
[suite]
name = "shard-wall"
seeds = [0]
device = "cpu"
{suite_keys}

[datasets.cifar]
kind = "cifar10"
root = "{root}"

[models.resnet]
factory = "bench.models.zoo:cifar10_resnet18"
checkpoint = "{checkpoint}"
dataset = "cifar"

[[robustness]]
models = ["resnet"]
attack = "autoattack"
epsilons = ["8/255"]
{shard_keys}
"""


def prepare(folder: Path, images: int, shards: int) -> dict[str, Path]:
    import torch

    from bench.models.zoo import cifar10_resnet18

    root = write_cifar10(folder / "data", n_per_batch=images)
    torch.manual_seed(0)
    checkpoint = folder / "resnet18.pt"
    torch.save(cifar10_resnet18().state_dict(), checkpoint)
    variants = {"unsharded": ("", ""), "unsharded, all cores": ('threads = "all"', ""),
                "sharded": ("", f"shards = {shards}")}
    suites = {}
    for name, (suite_keys, shard_keys) in variants.items():
        path = folder / f"{name.replace(', ', '-').replace(' ', '-')}.toml"
        path.write_text(SUITE.format(suite_keys=suite_keys, root=root, checkpoint=checkpoint,
                                     shard_keys=shard_keys))
        suites[name] = path
    return suites


def bench_run(suite: Path, out: Path) -> tuple[float, Path]:
    cmd = [sys.executable, "-m", "bench", "run", str(suite), "--results-dir", str(out),
           "--no-progress", "--no-report"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, next(p for p in (out / "shard-wall").iterdir() if p.is_dir())


def cell_times(run_dir: Path) -> tuple[float, float]:
    """(wall from the first evaluating cell's start to the merged cell's end, summed attack
    seconds of every shard) from the run's journal tables."""
    cells = pd.read_parquet(run_dir / "tables" / "cells.parquet")
    rob = cells[cells["kind"].isin(["robustness", "robustness-shard"])]
    start = pd.to_datetime(rob["started_utc"]).min()
    end = pd.to_datetime(rob["finished_utc"]).max()
    shards = pd.read_parquet(run_dir / "tables" / "shards.parquet")
    return (end - start).total_seconds(), float(shards["seconds"].sum())


def clean_accuracy(run_dir: Path) -> float:
    return float(pd.read_parquet(run_dir / "tables" / "robustness.parquet")["clean_acc"].iloc[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="keep the run folders here")
    args = ap.parse_args()
    print("\n".join(machine_lines()))
    print(f"started {datetime.now().isoformat(timespec='seconds')}; {args.images} images, "
          f"{args.shards} shards, {args.rounds} rounds")
    work = args.keep or Path(tempfile.mkdtemp(prefix="shard-wall-"))
    suites = prepare(work, args.images, args.shards)
    names = list(suites)
    walls = {n: [] for n in names}
    cells = {n: [] for n in names}
    attack = {n: [] for n in names}
    last = {}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds, run_dir = bench_run(suites[name], work / f"round{r}" / name.replace(" ", "-"))
            cell_wall, summed = cell_times(run_dir)
            walls[name].append(seconds)
            cells[name].append(cell_wall)
            attack[name].append(summed)
            last[name] = run_dir
            print(f"  round {r + 1} {name}: command {seconds:.1f} s, cell {cell_wall:.1f} s, "
                  f"attack {summed:.1f} s (clean accuracy {clean_accuracy(run_dir):.3f})",
                  flush=True)
    report(names, walls, cells, attack)
    check_identical(last)


def report(names, walls, cells, attack) -> None:
    print("\n| contender | command wall s | cell wall s | summed attack s |")
    print("|---|---|---|---|")
    for n in names:
        print(f"| {n} | {fmt(walls[n])} | {fmt(cells[n])} | {fmt(attack[n])} |")
    for base in ("unsharded", "unsharded, all cores"):
        for what, table in (("command", walls), ("cell", cells)):
            ratio = np.asarray(table["sharded"]) / np.asarray(table[base])
            q1, med, q3 = quartiles(ratio)
            print(f"sharded / {base} ({what} wall): {med:.3f}x [{q1:.3f}, {q3:.3f}]")
    overhead = np.asarray(attack["sharded"]) / np.asarray(attack["unsharded"])
    q1, med, q3 = quartiles(overhead)
    print(f"overhead, summed shard attack time / unsharded: {med:.3f}x [{q1:.3f}, {q3:.3f}]")


def fmt(values) -> str:
    q1, med, q3 = quartiles(values)
    return f"{med:.1f} [{q1:.1f}, {q3:.1f}]"


def check_identical(runs: dict[str, Path]) -> None:
    tables = {n: comparable_tables(d, drop=("cell_id",))["robustness"] for n, d in runs.items()}
    base = tables["unsharded"]
    for name, df in tables.items():
        pd.testing.assert_frame_equal(df, base, check_exact=True, obj=name)
    print(f"robustness rows identical across {', '.join(tables)} "
          f"(robust_acc {base['robust_acc'].tolist()}, n {base['n'].tolist()})")


if __name__ == "__main__":
    main()
