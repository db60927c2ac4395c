"""Two cells that can only finish side by side: proof of parallelism by events, not by clocks.

Each cell evaluates a user model whose forward pass says it arrived (a file in the suite's
folder) and waits until the other model's arrived too. Run one after the other, the first
would wait for ever; the wait gives up after BARRIER_TIMEOUT seconds (a hang guard, far above
any start-up) and the cell fails, saying so. So both cells ok means they ran at the same time.
"""

from __future__ import annotations

from pathlib import Path

BARRIER_TIMEOUT = 240

MODULE = "barrier_models"
BARRIER_MODULE = f'''
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PARTIES = ("left", "right")


class Meets(torch.nn.Module):
    """A linear model on 8x8 digits whose first forward pass waits for the other party."""

    def __init__(self, name):
        super().__init__()
        self.name, self.met = name, False
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        if not self.met:
            (HERE / f"arrived-{{self.name}}").touch()
            deadline = time.monotonic() + {BARRIER_TIMEOUT}  # a hang guard only
            while not all((HERE / f"arrived-{{p}}").exists() for p in PARTIES):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{{self.name}}: the other cell never ran beside this one")
                time.sleep(0.01)
            self.met = True
        return self.fc(x.flatten(1))


def left():
    return Meets("left")


def right():
    return Meets("right")
'''


def barrier_suite(name: str = "barrier") -> str:
    models = "\n".join(f"""
[models.{party}]
factory = "{MODULE}:{party}"
checkpoint = "barrier.pt"
dataset = "digits"
""" for party in ("left", "right"))
    return f"""
[suite]
name = "{name}"
seeds = [0]
device = "cpu"

[datasets.digits]
kind = "digits"
{models}
[[robustness]]
models = ["left", "right"]
attack = "fgsm"
epsilons = [0.1]
limit = 20
"""


def write_barrier_suite(folder: Path) -> Path:
    """suite.toml, the models' module and their checkpoint, in `folder` (put it on sys.path)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(BARRIER_MODULE)
    torch.save({"fc.weight": torch.zeros(10, 64), "fc.bias": torch.zeros(10)},
               folder / "barrier.pt")
    path = folder / "suite.toml"
    path.write_text(barrier_suite())
    return path
