"""One GPU pass: every GPU figure bench claims, measured in one run that ends inside its budget.

    python benchmarks/gpu_pass.py --budget-s 420            # on a CUDA machine (docs/gpu.md)
    python benchmarks/gpu_pass.py --device cpu --tiny       # the same code paths, tiny sizes

Parts, in this order (`--parts` picks some):

  peaks       fp32 / tf32 / bf16 / fp16 matmul peaks of this device, measured now
              (bench.throughput.peaks.measured_matmul_peak): what MFU is against
  throughput  bench's throughput cells (bench.cells.throughput.measure, CUDA-event timing) on
              every cell bench plans from suites/throughput.toml (small CNN and DCGAN, every
              workload, fp32/bf16, with and without channels_last), then ResNet-18 at
              3×32×32, batch 256: inference and train-step, fp32/bf16/fp16 (AMP), with and
              without channels_last. images/s median and IQR, peak memory, MFU
  fgsm, pgd   the 7-ε FGSM sweep and PGD-10 on the tutorial LeNet (10,000 / 2,048 images) and
              an untrained CIFAR ResNet-18 (2,048 / 512 images), batch 512: bench against one
              torchattacks object per ε (naive) and the plain hand-written loop, alternating
              rounds; per-ε accuracies and per-example agreement with naive
  autoattack  AutoAttack standard at ε = 0.1 on 256 digits (bench's small CNN, trained):
              bench.attacks.autoattack against torchattacks.AutoAttack called directly
  gan         bench's extractor and gan cells: the DCGAN of suites/gan-digits.toml for 2,500
              steps without and with AMP, FID (domain extractor) at the end of each
  cuda-tests  tests/test_cuda.py under pytest (on CUDA only, unless named in --parts)

Before each part, each throughput cell, shape, round and GAN run, the remaining budget is
checked against what the longest such item took so far; what does not fit is skipped and
marked, with the reason. If an item overruns anyway, the budget's hard stop interrupts it
and the pass still writes what finished. The JSON and the Markdown are written (atomically)
after every part, to results/gpu-pass/ under the repository root, and their paths printed.

Exit status: 0 when every part that ran agreed (contenders' accuracies, the CUDA tests),
1 when a part failed or a check disagreed, 2 for bad arguments (e.g. no CUDA without
--device cpu).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch  # noqa: E402

from benchmarks._budget import Budget, OutOfBudget  # noqa: E402
from benchmarks._gpu_parts import PARTS, REPO, SIZES, Pass  # noqa: E402
from benchmarks._gpu_report import render  # noqa: E402

SCHEMA = "bench-gpu-pass/1"
OUT_DIR = REPO / "results" / "gpu-pass"
RESERVE_S = 10.0  # kept back from the budget for writing the results
ALWAYS = ("peaks",)  # MFU needs them; they take seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="seconds the pass may take, writing included (default 420)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny sizes: the CPU check that the code paths run")
    parser.add_argument("--parts", default="auto",
                        help=f"comma-separated, of {', '.join(PARTS)}; auto: all (cuda-tests on "
                             "CUDA only)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the JSON and .md")
    parser.add_argument("--threads", type=int, help="torch threads (default: 1 on the CPU)")
    parser.add_argument("--commit", help="the commit measured, recorded when the checkout has "
                                         "no .git")
    return parser.parse_args(argv)


def choose_parts(spec: str, device: str) -> list[str]:
    if spec == "auto":
        return [p for p in PARTS if p != "cuda-tests" or device.startswith("cuda")]
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(unknown)}; expected some of "
                         f"{', '.join(PARTS)}")
    return [p for p in PARTS if p in parts or p in ALWAYS]


def check_device(device: str) -> str | None:
    """Why `device` cannot run the pass here, or None."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return ("no CUDA device here (torch.cuda.is_available() is False); the CPU check of "
                "the same code paths is: python benchmarks/gpu_pass.py --device cpu --tiny")
    if not (device == "cpu" or device.startswith("cuda")):
        return f"--device {device!r}: expected cuda, cuda:N or cpu"
    return None


def new_result(args: argparse.Namespace, argv: list[str], device: str) -> dict:
    from dataclasses import asdict

    from bench.provenance import collect

    return {
        "schema": SCHEMA, "status": "running", "budget_s": args.budget_s, "elapsed_s": 0.0,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "finished_utc": None, "command": shlex.join(["python", "benchmarks/gpu_pass.py", *argv]),
        "commit_given": args.commit, "sizes": asdict(SIZES["tiny" if args.tiny else "full"]),
        "provenance": collect(device, REPO),
        "torch_settings": {"cudnn_benchmark": torch.backends.cudnn.benchmark,
                           "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                           "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                           "threads": torch.get_num_threads()},
        "parts": {},
    }


def run_part(name: str, p: Pass, result: dict) -> None:
    """One part into result["parts"][name]: skipped when its first item cannot fit, and
    interrupted (keeping what it finished) when the budget runs out inside it. A failure is
    recorded with its traceback and the pass goes on to the next part."""
    section = result["parts"][name] = {"status": "running", "reason": None}
    first = p.sizes.first_item_s.get(name, 0.0)
    if not p.budget.fits(first):
        section.update(status="skipped", reason=f"budget: {max(0, p.budget.remaining()):.0f} s "
                                                f"left, its first item needs ~{first:g} s")
        return
    t0 = time.perf_counter()
    try:
        with p.budget.hard_stop():
            PARTS[name](p, section)
        if section["status"] == "running":
            section["status"] = "ok"
    except OutOfBudget as exc:
        section.update(status="interrupted", reason=f"{exc}; what finished is kept")
    except Exception as exc:  # noqa: BLE001 - recorded in the results with its traceback
        section.update(status="failed", reason=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(limit=8))
    section["seconds"] = time.perf_counter() - t0


def verdict(result: dict) -> str:
    parts = result["parts"].values()
    if any(s["status"] == "failed" or s.get("agree") is False for s in parts):
        return "failed"
    return "complete" if all(s["status"] == "ok" for s in parts) else "incomplete"


def attack_agreement(result: dict) -> None:
    """A part whose contenders disagree beyond kernel rounding is marked (agree = False)."""
    for name in ("fgsm", "pgd"):
        section = result["parts"].get(name)
        if section and section.get("shapes"):
            section["agree"] = all(e["agree"] for e in section["shapes"])


def jsonable(value):
    """NaN and inf as null (strict JSON), tuples as lists, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write(result: dict, paths: tuple[Path, Path], budget: Budget) -> None:
    from bench.store.atomic import atomic_write_text

    result["elapsed_s"] = budget.elapsed()
    attack_agreement(result)
    atomic_write_text(paths[0], json.dumps(jsonable(result), indent=1, allow_nan=False) + "\n")
    atomic_write_text(paths[1], render(result))


def main(argv: list[str] | None = None, clock: Callable[[], float] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    budget = Budget(args.budget_s, min(RESERVE_S, args.budget_s / 10), clock)
    problem = check_device(args.device)
    if problem:
        print(f"gpu_pass: {problem}", file=sys.stderr)
        return 2
    parts = choose_parts(args.parts, args.device)
    torch.set_num_threads(args.threads or (1 if args.device == "cpu" else torch.get_num_threads()))
    result = new_result(args, argv, args.device)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    kind = torch.device(args.device).type
    paths = (args.out / f"gpu-pass-{stamp}-{kind}.json", args.out / f"gpu-pass-{stamp}-{kind}.md")
    print(f"gpu_pass: {result['provenance']['device']['device_name']}, budget {args.budget_s:g} s, "
          f"parts {', '.join(parts)}; writing {paths[0]}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-pass-") as tmp:
        p = Pass(args.device, SIZES["tiny" if args.tiny else "full"], budget, Path(tmp))
        try:
            for name in parts:
                run_part(name, p, result)
                section = result["parts"][name]
                print(f"  {name}: {section['status']}"
                      f"{' - ' + section['reason'] if section.get('reason') else ''}", flush=True)
                write(result, paths, budget)
            result["status"] = verdict(result)
        except BaseException:  # Ctrl-C, SIGTERM: what finished is still written
            result["status"] = "interrupted"
            raise
        finally:
            result["finished_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write(result, paths, budget)
    print(f"gpu_pass: {result['status']} in {budget.elapsed():.0f} s; wrote\n  {paths[0]}\n  "
          f"{paths[1]}")
    return 1 if result["status"] == "failed" else 0


if __name__ == "__main__":
    raise SystemExit(main())
