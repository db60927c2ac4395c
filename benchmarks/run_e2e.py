"""`bench run` on a one-cell FGSM suite against a plain script doing the same job, end to end
(process start to exit), timed side by side, alternating.

    python benchmarks/run_e2e.py [--rounds 7] [--images 10000]

The job: the PyTorch FGSM tutorial's LeNet (a user's model: factory and checkpoint) attacked
with FGSM at the tutorial's 7 ε on 10,000 MNIST-format test images read from the official IDX
files, clean and robust accuracy per ε written to a file, 1 torch thread.

  bench   `python -m bench run suite.toml --no-progress --no-report` into a fresh results
          folder each round (one robustness cell, at the suite defaults: batch 512)
  plain   a 30-line script (`PLAIN_SCRIPT` below): torchvision's MNIST reader, the model and
          its checkpoint, the shared-gradient FGSM loop at batch 512, a CSV
  import  `python -c "import torch"`: the floor any PyTorch script pays before its first op

Data: no MNIST download is possible here, so the IDX files hold scikit-learn's digits
upsampled to 28×28 (benchmarks/_common.upsampled_digits), quantised to bytes like MNIST.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from benchmarks._common import (  # noqa: E402
    alternate,
    fmt_load,
    machine_lines,
    quartiles,
    ratio_summary,
    train_briefly,
    upsampled_digits,
)
from tests.helpers.formats import _write_idx  # noqa: E402  (the IDX writer the tests use)

EPSILONS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]

SUITE = """\
[suite]
name = "fgsm-e2e"
device = "cpu"
threads = 1

[datasets.mnist]
kind = "mnist"
root = "data"

[models.lenet]
dataset = "mnist"
factory = "benchmarks._models:TutorialLeNet"
checkpoint = "lenet.pt"

[[robustness]]
models = ["lenet"]
attack = "fgsm"
epsilons = {epsilons}
"""

PLAIN_SCRIPT = """\
import sys
import torch
import torch.nn.functional as F
from torchvision import datasets
from benchmarks._models import TutorialLeNet

torch.set_num_threads(1)
work, out = sys.argv[1], sys.argv[2]
test = datasets.MNIST(f"{work}/data", train=False, download=False)
x, y = test.data.unsqueeze(1).float().div(255), test.targets
model = TutorialLeNet()
model.load_state_dict(torch.load(f"{work}/lenet.pt", weights_only=True))
model.eval()
epsilons = EPSILONS
correct = torch.zeros(len(epsilons) + 1)
for xb, yb in zip(x.split(512), y.split(512)):
    xr = xb.clone().requires_grad_(True)
    logits = model(xr)
    correct[0] += (logits.argmax(1) == yb).sum()
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, yb), xr)
    step = grad.sign()
    with torch.no_grad():
        for i, eps in enumerate(epsilons):
            pred = model(torch.clamp(xb + eps * step, 0, 1)).argmax(1)
            correct[i + 1] += (pred == yb).sum()
with open(out, "w") as f:
    f.write("epsilon,accuracy\\n")
    f.write(f"clean,{correct[0].item() / len(y)}\\n")
    for i, eps in enumerate(epsilons):
        f.write(f"{eps},{correct[i + 1].item() / len(y)}\\n")
""".replace("EPSILONS", repr(EPSILONS))


def write_job(work: Path, images: int) -> None:
    """The IDX files, the trained checkpoint, the suite and the plain script under `work`."""
    from benchmarks._models import TutorialLeNet

    raw = work / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    splits = {"t10k": upsampled_digits(images, split="test", seed=2),
              "train": upsampled_digits(10_000, split="train", seed=1)}
    for prefix, (x, y) in splits.items():
        pixels = (x[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", pixels)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.numpy().astype(np.uint8))
    torch.manual_seed(0)
    x_train = splits["train"][0].mul(255).round().div(255)  # what the readers will see
    model = train_briefly(TutorialLeNet(), x_train, splits["train"][1], epochs=2, batch_size=64)
    torch.save(model.state_dict(), work / "lenet.pt")
    (work / "suite.toml").write_text(SUITE.format(epsilons=EPSILONS))
    (work / "plain_fgsm.py").write_text(PLAIN_SCRIPT)


def commands(work: Path) -> dict[str, Callable[[], None]]:
    counter = {"bench": 0}

    def bench():
        counter["bench"] += 1
        results = work / "results" / f"r{counter['bench']}"
        run([sys.executable, "-m", "bench", "run", str(work / "suite.toml"), "--results-dir",
             str(results), "--no-progress", "--no-report"])

    return {"bench": bench,
            "plain": lambda: run([sys.executable, str(work / "plain_fgsm.py"), str(work),
                                  str(work / "plain.csv")]),
            "import": lambda: run([sys.executable, "-c", "import torch"])}


def run(cmd: list[str], root: Path = ROOT) -> None:
    """`cmd` with the bench of the checkout at `root` (this one by default)."""
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def report(times: dict[str, list[float]], work: Path) -> None:
    print("\nseconds, process start to exit:")
    for name, ts in times.items():
        q1, med, q3 = quartiles(ts)
        print(f"  {name:<7s} median {med:7.2f}  IQR [{q1:.2f}, {q3:.2f}]  (n={len(ts)})")
    r = ratio_summary(times["bench"], times["plain"])
    extra = [b - p for b, p in zip(times["bench"], times["plain"])]
    q1, med, q3 = quartiles(extra)
    print(f"  bench / plain: {r['median_ratio']:.2f}× [{r['ratio_q1']:.2f}, {r['ratio_q3']:.2f}] "
          f"(median of per-round ratios [IQR]); bench − plain: {med:+.2f} s [{q1:+.2f}, {q3:+.2f}]")
    print("\nplain script's accuracies:\n" + (work / "plain.csv").read_text())
    import pandas as pd

    rows = pd.read_parquet(next((work / "results").rglob("robustness.parquet")))
    print("bench's accuracies (robust_acc per ε; clean "
          f"{rows['clean_acc'].iloc[0]}):\n{rows[['epsilon', 'robust_acc']].to_string(index=False)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("bench run (one FGSM cell) vs a plain script, end to end")
    for line in machine_lines():
        print(line)
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        work = Path(tmp)
        write_job(work, args.images)
        print(f"job: tutorial LeNet, {args.images} MNIST-format images, {len(EPSILONS)} ε; "
              f"{args.rounds} rounds (+1 warm-up), alternating; load {fmt_load()}", flush=True)
        times = alternate(commands(work), rounds=args.rounds, warmup=1, progress=True)
        report(times, work)
    print(f"load after: {fmt_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
