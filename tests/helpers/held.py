"""A suite whose last cell cannot finish until the test says so: signals land mid-run.

The held cell evaluates a user model whose forward pass touches `holding` and then waits for
`release` (files beside the model's module, in the suite's folder). So a signal sent at any
point of a run lands before the run completes, whatever the machine's load, and a test that
wants the cell mid-way waits for `holding` instead of guessing a delay.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

HOLD_MODULE = '''
import os
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


class Holds(torch.nn.Module):
    """A linear model on 8x8 digits whose forward pass waits for HERE/release."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        # Written whole, then renamed: a test that sees `holding` reads the pid in it.
        (HERE / f"holding.{os.getpid()}").write_text(str(os.getpid()))
        os.replace(HERE / f"holding.{os.getpid()}", HERE / "holding")
        while not (HERE / "release").exists():  # an event, not a time: the test creates it
            time.sleep(0.01)
        return self.fc(x.flatten(1))
'''

MODULE = "held_models"  # importable from the suite's folder: workers get the driver's sys.path
SUITE = "held"
CELLS = 3  # train fast, fgsm fast, fgsm held


def held_suite() -> str:
    return f"""
[suite]
name = "{SUITE}"
seeds = [0]
device = "cpu"

[datasets.small]
kind = "digits"
limit_train = 200

[models.fast]
arch = "small-cnn"
dataset = "small"
train = {{ epochs = 1 }}

[models.held]
factory = "{MODULE}:Holds"
checkpoint = "held.pt"
dataset = "small"

[[robustness]]
models = ["fast", "held"]
attack = "fgsm"
epsilons = [0, 0.1]
limit = 50
"""


def write_held_suite(folder: Path) -> Path:
    """suite.toml, the model's module and its checkpoint, in `folder` (the run's cwd)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(HOLD_MODULE)
    torch.save({"fc.weight": torch.zeros(10, 64), "fc.bias": torch.zeros(10)}, folder / "held.pt")
    path = folder / "suite.toml"
    path.write_text(held_suite())
    return path


def holding(folder: Path) -> bool:
    return (folder / "holding").exists()


def holder_pid(folder: Path) -> int:
    return int((folder / "holding").read_text())


def release(folder: Path) -> None:
    (folder / "release").touch()


def journal(results: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in results.glob(f"{SUITE}/*/cells/*.json")}


def journal_status(results: Path) -> dict[str, str]:
    return {name: json.loads(data)["status"] for name, data in journal(results).items()}


def as_a_foreground_job() -> None:
    """Popen's preexec_fn: SIGINT and SIGQUIT at their defaults, as a shell's foreground job
    has them. A background job of a script inherits them ignored (so may pytest, under some
    runners), and so would bench: a program started with SIGINT ignored keeps ignoring it,
    as POSIX means it to, and a test of Ctrl-C would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
