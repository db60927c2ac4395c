"""The "throughput" cell: time one (workload, target, batch size, precision, layout, compile, seed).

Returns one row in the `throughput` table. A configuration that cannot run here (fp16 on the
CPU, bf16 before Ampere, a torch.compile failure) gives a row with `skipped=True` and the
reason, not a failed cell. The timed region holds only the step: the batch is on the device
before warm-up starts. FLOPs are counted on one extra eager step; the CPU peak is measured once
per process (see bench.throughput.peaks).
"""

from __future__ import annotations

import math
import warnings

import torch

from bench.cells import CellResult, RunEnv
from bench.cells.common import build_gan, user_classifier
from bench.models.build import build_classifier
from bench.provenance import device_name
from bench.seeding import seeded
from bench.store import schema as S
from bench.store.schema import row
from bench.suite.cell_configs import GanTarget, ThroughputCellConfig, TrainedTarget, UserTarget
from bench.suite.schema import TrainConfig
from bench.throughput import flops as flops_mod
from bench.throughput import memory, peaks, timing, workloads

# What torch.compile raises when it cannot compile (Dynamo, Inductor, the C++ toolchain).
COMPILE_ERRORS: tuple[type[BaseException], ...] = (torch._dynamo.exc.TorchDynamoException,)
try:
    from torch._inductor.exc import CppCompileError

    COMPILE_ERRORS += (CppCompileError,)
except ImportError:  # older torch: Dynamo wraps backend errors in BackendCompilerFailed
    pass


def run_throughput_cell(config: ThroughputCellConfig, inputs: dict[str, CellResult],
                        env: RunEnv) -> CellResult:
    del inputs  # throughput times freshly initialised models; it needs no trained weights
    return CellResult(records={S.THROUGHPUT: [measure(config, env.device)]})


def measure(config: ThroughputCellConfig, device: str, peak: peaks.Peak | None = None) -> dict:
    """The throughput row for a resolved throughput config on `device`. MFU is against `peak`
    when given (benchmarks/gpu_pass.py measures one), else `peaks.peak_for`'s."""
    ident = identity_columns(config, device)
    reason = workloads.precision_unsupported(device, config.precision)
    if reason is not None:
        return skipped(ident, reason)
    with seeded(config.seed, device):  # model initialisation, without touching the caller's RNG
        workload = build_workload(config, device)
    try:
        with warnings.catch_warnings():
            # CPU autocast turns itself off with only a warning for a dtype it cannot do.
            warnings.filterwarnings("error", message=".*autocast.*not supported.*")
            warnings.filterwarnings("error", message=".*[Dd]isabling autocast.*")
            result = time_workload(workload, device, config.warmup, config.repeats)
    except COMPILE_ERRORS as exc:
        if not config.compile:
            raise
        return skipped(ident, f"torch.compile failed: {type(exc).__name__}: {_brief(exc)}")
    except UserWarning as exc:
        return skipped(ident, f"{config.precision} autocast is not available here: {exc}")
    if peak is None:
        peak = peaks.peak_for(device, ident["device_name"], config.precision, config.peak_tflops)
    return row(S.THROUGHPUT, **ident, **timing_columns(result, peak), skipped=False,
               skip_reason=None)


def time_workload(workload: workloads.Workload, device: str, warmup: int, repeats: int) -> dict:
    """Warm up, time every repeat, then count FLOPs on one eager step (outside the timed region)."""
    # Warm-up first: compilation and allocator growth happen here, not in the timed repeats.
    for _ in range(warmup):
        workload.step()
    mem_kind = memory.reset_peak(device)
    times = timing.time_repeats(workload.step, device, warmup=0, repeats=repeats)
    peak_bytes = memory.read_peak(device, mem_kind)
    flops = flops_mod.count_flops(workload.eager_step)
    return {"times": times, "flops": flops, "peak_memory_bytes": peak_bytes,
            "memory_kind": mem_kind, "images_per_step": workload.images_per_step}


def build_workload(config: ThroughputCellConfig, device: str) -> workloads.Workload:
    from bench.data import load_dataset

    target, name = config.target, config.workload
    data = load_dataset(config.dataset, "train")
    x, y = _batch(data.x, data.y, config.batch_size)
    common = dict(device=device, precision=config.precision, compiled=config.compile,
                  seed=config.seed)
    if isinstance(target, GanTarget):
        gan = build_gan(target.arch, data, z_dim=target.z_dim, lr=None, seed=config.seed)
        gan.to(device, amp=config.precision == "fp16")
        real = (x * 2 - 1).to(device)
        if config.channels_last:
            (real,) = workloads.to_channels_last(gan.generator, real)
            workloads.to_channels_last(gan.discriminator)
        return workloads.gan_workload(name, gan, real, **common)

    if isinstance(target, UserTarget):
        model = user_classifier(target, target.model)
    else:
        # Under the cell's seeded scope already; seeding again would change nothing drawn.
        model = build_classifier(target.arch, target.normalize,
                                 (data.channels, *data.image_size), data.num_classes)
    model = model.to(device)
    x, y = x.to(device), y.to(device)
    if config.channels_last:
        (x,) = workloads.to_channels_last(model, x)
    train = target.train if isinstance(target, TrainedTarget) else None
    optimizer = make_optimizer(model, train) if name == "train-step" else None
    return workloads.classifier_workload(name, model, x, y, optimizer=optimizer,
                                         epsilon=config.epsilon, pgd_steps=config.pgd_steps,
                                         **common)


def make_optimizer(model: torch.nn.Module, train: TrainConfig | None) -> torch.optim.Optimizer:
    """The train recipe's optimiser, from the builder training uses (Adam 1e-3 without one)."""
    from bench.training import optim

    return optim.make_optimizer(model.parameters(), train or TrainConfig())


def _batch(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch_size` examples, tiled when the split is smaller than one batch."""
    reps = math.ceil(batch_size / len(y))
    if reps > 1:
        x, y = x.repeat(reps, 1, 1, 1), y.repeat(reps)
    return x[:batch_size].contiguous(), y[:batch_size].contiguous()


# -- rows -------------------------------------------------------------------------------------


def identity_columns(config: ThroughputCellConfig, device: str) -> dict:
    """What was timed, where and how: the columns every row has, skipped or not."""
    target = config.target
    return {
        "workload": config.workload,
        "target": target.gan if isinstance(target, GanTarget) else target.model,
        "arch": target.factory if isinstance(target, UserTarget) else target.arch,
        "dataset": config.dataset.name,
        "batch_size": config.batch_size,
        "precision": config.precision,
        "channels_last": config.channels_last,
        "compile": config.compile,
        "seed": config.seed,
        "device": device,
        "device_name": device_name(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "warmup": config.warmup,
        "repeats": config.repeats,
        "timing_method": timing.timing_method(device),
    }


# A skipped configuration was not timed: its timing columns are empty.
NOT_TIMED = {"times_s": [], "median_s": math.nan, "q1_s": math.nan, "q3_s": math.nan,
             "iqr_s": math.nan, "images_per_step": None, "images_per_s": math.nan,
             "flops_per_step": None, "achieved_tflops": math.nan, "peak_tflops": math.nan,
             "peak_source": None, "mfu": math.nan, "peak_memory_bytes": None,
             "memory_kind": None}


def skipped(ident: dict, reason: str) -> dict:
    return row(S.THROUGHPUT, **ident, **NOT_TIMED, skipped=True, skip_reason=reason)


def timing_columns(result: dict, peak: peaks.Peak) -> dict:
    stats = timing.summarize(result["times"])
    achieved = flops_mod.achieved_tflops(result["flops"], stats.median_s)
    mfu = achieved / peak.tflops if peak.tflops and not math.isnan(achieved) else math.nan
    return {
        "times_s": [float(t) for t in result["times"]],
        "median_s": stats.median_s,
        "q1_s": stats.q1_s,
        "q3_s": stats.q3_s,
        "iqr_s": stats.iqr_s,
        "images_per_step": result["images_per_step"],
        "images_per_s": result["images_per_step"] / stats.median_s,
        "flops_per_step": result["flops"],
        "achieved_tflops": achieved,
        "peak_tflops": math.nan if peak.tflops is None else peak.tflops,
        "peak_source": peak.source,
        "mfu": mfu,
        "peak_memory_bytes": result["peak_memory_bytes"],
        "memory_kind": result["memory_kind"],
    }


def _brief(exc: BaseException, lines: int = 3, chars: int = 400) -> str:
    """The first few non-empty lines of an error message, on one line."""
    parts = [line.strip() for line in str(exc).splitlines() if line.strip()][:lines]
    return " ".join(parts)[:chars]
