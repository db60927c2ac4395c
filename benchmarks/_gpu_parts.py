"""The parts of benchmarks/gpu_pass.py. Each fills its section of the results as it goes, so
whatever finished before the budget ran out (or a failure) is kept, and checks the budget
before each item it starts (a throughput cell, a shape, a round, a GAN run).

Nothing here re-implements bench: the throughput part runs bench's throughput cell code
(`bench.cells.throughput.measure`) on the cells bench plans from the suite files; the attack
parts reuse the contenders of benchmarks/fgsm_sweep.py, pgd_sweep.py and
autoattack_overhead.py; the GAN part runs bench's extractor and gan cells through
`execute_cell`.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from benchmarks._budget import Budget, RoundGuard
from benchmarks._common import alternate, quartiles, ratio_summary

REPO = Path(__file__).resolve().parents[1]
SUITES = REPO / "suites"

# ResNet-18 at the CIFAR shape, timed by the same throughput cells as suites/throughput.toml:
# the digits conformed to 3×SIDE×SIDE (the data does not change the time).
RESNET_SUITE = """
[suite]
name = "gpu-pass-resnet18"

[datasets.cifar-shaped]
kind = "digits"
image_size = [{side}, {side}]
channels = 3

[models.resnet18]
arch = "resnet18"
dataset = "cifar-shaped"

[[throughput]]
models = ["resnet18"]
workloads = ["inference", "train-step"]
batch_sizes = [{batch}]
precision = ["fp32", "bf16", "fp16"]
channels_last = [false, true]
warmup = {warmup}
repeats = {repeats}
"""


@dataclass(frozen=True)
class Sizes:
    """Everything the pass sizes: "full" for a GPU, "tiny" for the CPU check."""

    name: str
    peak_matmuls: tuple[tuple[int, int], ...] | None  # None: bench.throughput.peaks' default
    suite_batch: int | None  # throughput.toml cells: None keeps the suite's batch sizes
    suite_warmup: int | None
    suite_repeats: int | None
    resnet_batch: int
    resnet_side: int
    resnet_warmup: int
    resnet_repeats: int
    one_layout: bool  # throughput: channels_last only for reduced precision (tiny: half the cells)
    lenet_train_images: int
    attack_side: dict[str, int]  # image side per shape
    fgsm_images: dict[str, int]
    pgd_images: dict[str, int]
    attack_batch: int
    pgd_steps: int
    pgd_epsilons: tuple[float, ...] | None  # None: the benchmark's 7 (benchmarks/pgd_sweep.py)
    rounds: int
    aa_images: int
    aa_epsilon: float
    aa_batch: int
    aa_rounds: int
    gan_steps: int
    gan_overrides: dict = field(default_factory=dict)  # of the suite's dcgan cell
    # Seconds before anything was measured: the first item of a part must fit in these.
    first_item_s: dict[str, float] = field(default_factory=dict)


FULL = Sizes(
    name="full", peak_matmuls=None, suite_batch=None, suite_warmup=None, suite_repeats=None,
    resnet_batch=256, resnet_side=32, resnet_warmup=5, resnet_repeats=20, one_layout=False,
    lenet_train_images=10_000, attack_side={"lenet": 28, "resnet18": 32},
    fgsm_images={"lenet": 10_000, "resnet18": 2048}, pgd_images={"lenet": 2048, "resnet18": 512},
    attack_batch=512, pgd_steps=10, pgd_epsilons=None, rounds=5, aa_images=256, aa_epsilon=0.1, aa_batch=256,
    aa_rounds=3, gan_steps=2500,
    first_item_s={"throughput": 10, "fgsm": 30, "pgd": 40, "autoattack": 90, "gan": 60,
                  "cuda-tests": 90})
TINY = Sizes(
    name="tiny", peak_matmuls=((64, 3), (128, 3)), suite_batch=8, suite_warmup=1,
    suite_repeats=2, resnet_batch=2, resnet_side=8, resnet_warmup=1, resnet_repeats=2,
    one_layout=True, lenet_train_images=256, attack_side={"lenet": 28, "resnet18": 8},
    fgsm_images={"lenet": 64, "resnet18": 2}, pgd_images={"lenet": 32, "resnet18": 2},
    attack_batch=32, pgd_steps=2, pgd_epsilons=(0.0, 0.1), rounds=1, aa_images=16, aa_epsilon=0.3, aa_batch=16,
    aa_rounds=1, gan_steps=4,
    gan_overrides={"batch_size": 16, "num_samples": 40},
    first_item_s={"throughput": 1, "fgsm": 1, "pgd": 1, "autoattack": 1, "gan": 1,
                  "cuda-tests": 1})
SIZES = {"full": FULL, "tiny": TINY}


@dataclass
class Pass:
    """What every part needs: where it runs, its sizes, the budget, the measured peaks."""

    device: str
    sizes: Sizes
    budget: Budget
    workdir: Path
    peaks: dict = field(default_factory=dict)  # precision -> bench.throughput.peaks.Peak
    shapes: dict = field(default_factory=dict)  # name -> benchmarks._shapes.Shape, built once

    def sync(self) -> None:
        if torch.device(self.device).type == "cuda":
            torch.cuda.synchronize(self.device)

    def guard(self, part: str) -> RoundGuard:
        return RoundGuard(self.budget, first_s=self.sizes.first_item_s.get(part, 0.0))

    def shape(self, name: str):
        from benchmarks._shapes import build_shape

        if name not in self.shapes:
            s = self.sizes
            images = max(s.fgsm_images[name], s.pgd_images[name])
            self.shapes[name] = build_shape(name, images, self.device, s.lenet_train_images,
                                            s.attack_side[name])
        return self.shapes[name]


def stop_for_budget(section: dict, what: str) -> None:
    section["status"] = "partial"
    section.setdefault("skipped", []).append(f"{what}: not started, the budget would not hold it")


# -- peaks --------------------------------------------------------------------------------


def peaks_part(p: Pass, section: dict) -> None:
    from bench.throughput.peaks import MATMUL_PRECISIONS, gpu_peak, measured_matmul_peak

    section["rows"] = rows = []
    cuda = torch.device(p.device).type == "cuda"
    name = torch.cuda.get_device_name(p.device) if cuda else None
    for precision in MATMUL_PRECISIONS:
        peak = measured_matmul_peak(p.device, precision, p.sizes.peak_matmuls)
        p.peaks[precision] = peak
        # The datasheet table has no TF32 column (bench's fp32 rows are non-TF32 matmuls).
        sheet = gpu_peak(name, precision) if cuda and precision != "tf32" else None
        rows.append({"precision": precision, "tflops": peak.tflops, "source": peak.source,
                     "datasheet_tflops": sheet.tflops if sheet else None,
                     "datasheet_source": sheet.source if sheet else None})


# -- throughput ---------------------------------------------------------------------------


def throughput_configs(p: Pass) -> list[tuple[str, object]]:
    """(group, config): the cells bench plans from suites/throughput.toml, then ResNet-18's."""
    from bench.suite.load import load_suite
    from bench.suite.plan import plan

    s = p.sizes
    out: dict[str, tuple[str, object]] = {}
    for cell in plan(load_suite(SUITES / "throughput.toml")):
        update = {k: v for k, v in (("batch_size", s.suite_batch), ("warmup", s.suite_warmup),
                                    ("repeats", s.suite_repeats)) if v is not None}
        config = cell.config.model_copy(update=update)
        out.setdefault(config.model_dump_json(), ("suites/throughput.toml", config))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet18.toml"
        path.write_text(RESNET_SUITE.format(side=s.resnet_side, batch=s.resnet_batch,
                                            warmup=s.resnet_warmup, repeats=s.resnet_repeats))
        for cell in plan(load_suite(path)):
            out.setdefault(cell.config.model_dump_json(), ("resnet18", cell.config))
    configs = list(out.values())
    if s.one_layout:
        configs = [(g, c) for g, c in configs if c.channels_last == (c.precision != "fp32")]
    return configs


def throughput_part(p: Pass, section: dict) -> None:
    from bench.cells.throughput import measure

    section["rows"] = rows = []
    configs = throughput_configs(p)
    guard = p.guard("throughput")
    for i, (group, config) in enumerate(configs):
        if guard():
            stop_for_budget(section, f"{len(configs) - i} of {len(configs)} throughput cells")
            return
        row = measure(config, p.device, p.peaks.get(config.precision))
        rows.append(throughput_row(group, row))


def throughput_row(group: str, row: dict) -> dict:
    """bench's throughput row, plus images/s quartiles and MFU against the datasheet peak."""
    from bench.throughput.peaks import gpu_peak

    out = {"group": group, **row}
    if row["skipped"]:
        return out
    n = row["images_per_step"]
    out["images_per_s_q1"], out["images_per_s_q3"] = n / row["q3_s"], n / row["q1_s"]
    if row["device"].startswith("cuda"):
        sheet = gpu_peak(row["device_name"], row["precision"])
        out["datasheet_peak_tflops"] = sheet.tflops
        out["mfu_datasheet"] = (row["achieved_tflops"] / sheet.tflops if sheet.tflops
                                else math.nan)
    return out


# -- FGSM and PGD: bench against torchattacks per ε and the plain loop --------------------


def attack_contenders(kind: str, p: Pass) -> tuple[dict[str, Callable], dict]:
    """{name: fn(model, x, y, batch, **kwargs)} and the kwargs, from the existing benchmarks."""
    if kind == "fgsm":
        from benchmarks import fgsm_sweep as m

        # Its contenders give the clean correctness first, then one per ε: keep the ε ones.
        fns = {name: per_epsilon(fn) for name, fn in (
            ("naive", m.naive_sweep), ("plain", m.plain_sweep), ("bench", m.bench_sweep))}
        return fns, {"epsilons": m.EPSILONS}
    from benchmarks import pgd_sweep as m

    fns = {"naive": m.naive_pgd, "plain": m.plain_pgd, "bench": m.bench_pgd}
    return fns, {"epsilons": list(p.sizes.pgd_epsilons or m.EPSILONS), "steps": p.sizes.pgd_steps}


def per_epsilon(fn: Callable) -> Callable:
    """fgsm_sweep.py's contender without its leading clean correctness."""
    def run(*args, **kwargs):
        return fn(*args, **kwargs)[1:]
    return run


def as_correct(kind: str, out: list[torch.Tensor], y: torch.Tensor) -> list[torch.Tensor]:
    """Per ε, a bool per image on the CPU (PGD's contenders return predictions)."""
    out = [t.cpu() for t in out]
    return out if kind == "fgsm" else [t == y.cpu() for t in out]


def attack_part(kind: str, p: Pass, section: dict) -> None:
    section["shapes"] = []
    for name in ("lenet", "resnet18"):
        guard = p.guard(kind)
        if guard():
            stop_for_budget(section, f"{kind} on {name}")
            continue
        section["shapes"].append(time_attack(kind, p, name, guard))
        if guard.stopped:
            section["status"] = "partial"


def time_attack(kind: str, p: Pass, name: str, guard: RoundGuard) -> dict:
    shape = p.shape(name)
    n = (p.sizes.fgsm_images if kind == "fgsm" else p.sizes.pgd_images)[name]
    x, y, model, batch = shape.x[:n], shape.y[:n], shape.model, p.sizes.attack_batch
    fns, kwargs = attack_contenders(kind, p)
    guard.restart()  # building the shape (training the LeNet) is no round
    results: dict[str, list[torch.Tensor]] = {}
    # Every contender's results come back to the host inside its time, as an evaluation's must.
    runs = {c: (lambda c=c, fn=fn: results.__setitem__(
                c, as_correct(kind, fn(model, x, y, batch, **kwargs), y)))
            for c, fn in fns.items()}
    times = alternate(runs, rounds=p.sizes.rounds, warmup=1, progress=False, sync=p.sync,
                      stop=guard)
    entry = {"shape": name, "title": shape.title, "notes": shape.notes, "images": n,
             "batch": batch, "epsilons": list(kwargs["epsilons"]),
             "steps": kwargs.get("steps"), "rounds": len(times["naive"]),
             "contenders": timing_entries(times, "naive")}
    entry |= agreement(results, n)
    return entry


def timing_entries(times: dict[str, list[float]], baseline: str) -> dict:
    out = {}
    for name, ts in times.items():
        q1, med, q3 = quartiles(ts) if ts else (math.nan,) * 3
        out[name] = {"times_s": ts, "median_s": med, "q1_s": q1, "q3_s": q3}
        if ts and name != baseline:
            out[name]["speedup_vs_" + baseline] = ratio_summary(times[baseline], ts)
    return out


def agreement(results: dict[str, list[torch.Tensor]], n: int) -> dict:
    """Per-ε correct counts of every contender, and whether each agrees with naive: per
    example (`identical`), or by counts within kernel rounding (bench.defaults.KERNEL_FLIP_SHARE
    of the examples, at least one: GPU kernels are picked by batch shape)."""
    from bench.defaults import KERNEL_FLIP_SHARE

    base = results["naive"]
    slack = max(1, math.floor(n * KERNEL_FLIP_SHARE))
    counts = {name: [int(c.sum()) for c in r] for name, r in results.items()}
    checks = {}
    for name, r in results.items():
        if name == "naive":
            continue
        differing = sum(int((a != b).sum()) for a, b in zip(base, r))
        worst = max(abs(a - b) for a, b in zip(counts["naive"], counts[name]))
        checks[name] = {"identical": differing == 0, "differing_pairs": differing,
                        "max_count_difference": worst, "agree": worst <= slack}
    return {"correct": counts, "accuracy": {k: [c / n for c in v] for k, v in counts.items()},
            "vs_naive": checks, "agree": all(c["agree"] for c in checks.values())}


# -- AutoAttack -----------------------------------------------------------------------------


def autoattack_part(p: Pass, section: dict) -> None:
    from bench.data import load_dataset
    from benchmarks.autoattack_overhead import DIGITS, bench_side, direct_side, trained_model

    s = p.sizes
    model = trained_model().to(p.device).eval()
    test = load_dataset(DIGITS, "test")
    x, y = test.x[:s.aa_images].to(p.device), test.y[:s.aa_images].to(p.device)
    for side in (bench_side, direct_side):  # kernels and lazy set-up warmed on 4 images
        side(model, x[:4], y[:4], s.aa_epsilon, 4)()
    preds: dict[str, torch.Tensor] = {}
    sides = {"bench": bench_side(model, x, y, s.aa_epsilon, s.aa_batch),
             "torchattacks": direct_side(model, x, y, s.aa_epsilon, s.aa_batch)}
    runs = {k: (lambda k=k, fn=fn: preds.__setitem__(k, fn().cpu())) for k, fn in sides.items()}
    guard = p.guard("autoattack")
    if guard():
        stop_for_budget(section, "AutoAttack")
        return
    times = alternate(runs, rounds=s.aa_rounds, warmup=0, progress=False, sync=p.sync,
                      stop=guard)
    with torch.inference_mode():
        clean = (model(x).argmax(1) == y).cpu()
    section["rows"] = [{
        "model": "bench small-cnn (trained 5 epochs on the digits)", "version": "standard",
        "epsilon": s.aa_epsilon, "images": int(len(y)), "batch": s.aa_batch,
        "rounds": len(times["bench"]), "clean_acc": float(clean.float().mean()),
        "robust_acc": {k: float((clean & (v == y.cpu())).float().mean())
                       for k, v in preds.items()},
        "identical": bool(torch.equal(preds["bench"], preds["torchattacks"])),
        "contenders": timing_entries(times, "torchattacks")}]
    section["agree"] = section["rows"][0]["identical"]
    if guard.stopped:
        section["status"] = "partial"


# -- DCGAN with and without AMP -------------------------------------------------------------


def gan_part(p: Pass, section: dict) -> None:
    from bench.cells import RunEnv
    from bench.executors.execute import as_result, execute_cell
    from bench.store import schema as S
    from bench.suite.load import load_suite
    from bench.suite.plan import Cell, plan

    cells = plan(load_suite(SUITES / "gan-digits.toml"))
    extractor = next(c for c in cells if c.kind == "extractor")
    dcgan = next(c for c in cells if c.kind == "gan" and c.config.gan == "dcgan"
                 and c.config.seed == 0)
    env = RunEnv(device=p.device, cache_dir=p.workdir / "cache", artifacts_dir=p.workdir / "art",
                 progress=False, threads=torch.get_num_threads())
    section["rows"] = rows = []
    record = execute_cell(extractor, {}, env)
    if not record.ok:
        raise RuntimeError(f"the extractor cell failed: {record.reason}")
    inputs = {"extractor": as_result(record)}
    guard = p.guard("gan")
    for amp in (False, True):
        if guard():
            stop_for_budget(section, f"DCGAN with amp = {str(amp).lower()}")
            return
        config = dcgan.config.model_copy(update={
            "amp": amp, "steps": p.sizes.gan_steps, "eval_every": p.sizes.gan_steps,
            "metrics": ["fid"], **p.sizes.gan_overrides})
        record = execute_cell(Cell("gan", config, dcgan.deps, dcgan.label), inputs, env)
        rows.append(gan_row(config, record, S.GAN))
    failed = [f"amp = {str(r['amp_asked']).lower()}: {r['reason']}" for r in rows
              if r["status"] != "ok"]
    if failed:  # a result (e.g. AMP diverged), kept with its rows; the pass says so
        section.update(status="failed", reason="; ".join(failed))


def gan_row(config, record, table: str) -> dict:
    out = {"amp_asked": config.amp, "steps": config.steps, "batch_size": config.batch_size,
           "num_samples": config.num_samples, "status": record.status, "reason": record.reason,
           "cell_seconds": record.seconds}
    rows = record.records.get(table, [])
    if rows:
        last, first = rows[-1], rows[0]
        out |= {k: last[k] for k in ("fid", "real_floor_fid", "train_images_per_s", "seconds",
                                     "amp", "amp_skipped_steps", "extractor", "note", "step")}
        out["fid_step0"] = first["fid"]
    return out


# -- the CUDA correctness tests -------------------------------------------------------------


def cuda_tests_part(p: Pass, section: dict) -> None:
    """tests/test_cuda.py under pytest, in a child process that the budget bounds."""
    junit = p.workdir / "junit-cuda.xml"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [x for x in [os.environ.get("PYTHONPATH")] if x]))
    cmd = [sys.executable, "-m", "pytest", "tests/test_cuda.py", "-q", "-rA",
           "-p", "no:cacheprovider", f"--junitxml={junit}"]
    section["command"] = " ".join(cmd[1:-1])
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=max(1.0, p.budget.remaining()))
    except subprocess.TimeoutExpired:
        section.update(status="interrupted", reason="the budget ran out during the tests")
        return
    section["returncode"] = done.returncode
    section["summary"] = (done.stdout.strip().splitlines() or [""])[-1]
    section["tests"] = junit_cases(junit) if junit.exists() else []
    if done.returncode not in (0, 5):  # 5: no test collected
        section.update(status="failed", reason=section["summary"])
    elif any(t["outcome"] == "skipped" for t in section["tests"]):
        section["reason"] = "some tests skipped (on a GPU none should): see their messages"


def junit_cases(path: Path) -> list[dict]:
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (node.get("message") or node.text or "").strip()
        out.append({"name": case.get("name"), "outcome": outcome, "message": message[:500]})
    return out


PARTS: dict[str, Callable[[Pass, dict], None]] = {
    "peaks": peaks_part,
    "throughput": throughput_part,
    "fgsm": lambda p, section: attack_part("fgsm", p, section),
    "pgd": lambda p, section: attack_part("pgd", p, section),
    "autoattack": autoattack_part,
    "gan": gan_part,
    "cuda-tests": cuda_tests_part,
}
