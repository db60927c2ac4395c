"""The robustness cell as a benchmark contender: a real `bench run` of a user-model suite.

`CellJob.write` puts under a folder a shape's test images as MNIST IDX files (the real
on-disk format, written by tests/helpers/formats.py's writer; a 3-channel shape is written in
gray and read back with `channels = 3`; the train split, which the loader also wants to find,
holds the first 10 images), the shape's weights as a user's checkpoint, and a
one-cell FGSM suite that names the model by factory and checkpoint and leaves every other
setting at its default (batch size, device "cpu", the shape's `threads`). It returns the
images as bench's loader reads them back, so that every contender attacks the same tensor.

`CellJob.run` runs that suite in this process (`workers = 1`: the cell runs here, between
the other contenders, not in a worker process) through `bench.runner.run_suite`, into a
fresh results folder, and returns what the run stored: the cell's own `seconds` (its clean
predictions and the sweep, as bench/cells/robustness.py times them: no data loading, no
model building, no checks) and its per-example correctness from the `correctness` table.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from tests.helpers.formats import _write_idx  # the IDX writer the tests use

SUITE = """\
[suite]
name = "fgsm-cell"
device = "cpu"
threads = {threads}
workers = 1

[datasets.images]
kind = "mnist"
root = "data"
{channels}
[models.net]
dataset = "images"
factory = "{factory}"
checkpoint = "net.pt"

[[robustness]]
models = ["net"]
attack = "fgsm"
epsilons = {epsilons}
"""


class CellJob:
    def __init__(self, work: Path, epsilons: list[float]) -> None:
        self.work, self.epsilons, self.runs = work, epsilons, 0

    @classmethod
    def write(cls, work: Path, x: torch.Tensor, y: torch.Tensor, model: torch.nn.Module,
              factory: str, epsilons: list[float], threads: int | str
              ) -> tuple[CellJob, torch.Tensor, torch.Tensor]:
        """The job, and the images and labels as the cell's loader reads them."""
        from bench.data import load_dataset
        from bench.suite.cell_configs import DatasetSpec

        channels = x.shape[1]
        if channels == 3 and not torch.equal(x, x[:, :1].expand_as(x)):
            raise ValueError("a 3-channel shape must be gray repeated (MNIST files hold one)")
        raw = work / "data" / "MNIST" / "raw"
        raw.mkdir(parents=True)
        pixels = (x[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        labels = y.numpy().astype(np.uint8)
        for prefix, n in (("t10k", len(y)), ("train", 10)):  # the loader wants both splits
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", pixels[:n])
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels[:n])
        torch.save(model.state_dict(), work / "net.pt")
        threads_value = f'"{threads}"' if isinstance(threads, str) else str(threads)
        (work / "suite.toml").write_text(SUITE.format(
            threads=threads_value, factory=factory, epsilons=epsilons,
            channels="channels = 3\n" if channels == 3 else ""))
        spec = DatasetSpec(name="images", kind="mnist", root=str(work / "data"),
                           channels=3 if channels == 3 else None)
        data = load_dataset(spec, "test")
        return cls(work, epsilons), data.x, data.y

    def run(self) -> tuple[float, list[torch.Tensor]]:
        """(the cell's `seconds`, [clean correct, then correct per ε] as bool masks)."""
        from bench.runner import run_suite
        from bench.store.correctness import unpack_bits
        from bench.store.run_store import RunStore

        self.runs += 1
        results = self.work / "results" / f"r{self.runs}"
        outcome = run_suite(self.work / "suite.toml", results_dir=results, progress=False,
                            report=False)
        if outcome.status != "complete":
            raise SystemExit(f"bench run {self.work / 'suite.toml'}: {outcome.status}")
        store = RunStore(outcome.run_dir)
        rows = store.read_table("robustness").sort_values("epsilon")
        correct = store.read_table("correctness").sort_values("epsilon")
        if list(rows["epsilon"]) != sorted(self.epsilons) or rows["seconds"].nunique() != 1:
            raise SystemExit(f"{outcome.run_dir}: not one cell's rows for every ε")
        n = int(correct["n"].iloc[0])
        masks = [torch.from_numpy(unpack_bits(correct["clean_correct"].iloc[0], n))]
        by_eps = {e: torch.from_numpy(unpack_bits(bits, n))
                  for e, bits in zip(correct["epsilon"], correct["adv_correct"])}
        masks += [by_eps[e] for e in self.epsilons]
        shutil.rmtree(results)  # the next round writes a fresh run
        return float(rows["seconds"].iloc[0]), masks
