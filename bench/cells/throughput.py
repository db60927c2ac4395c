"""The "throughput" cell: time one (workload, target, batch size, precision, layout, compile, seed).

Returns one row in the `throughput` table. A configuration that cannot run here (fp16 on the
CPU, bf16 before Ampere, a torch.compile failure) gives a row with `skipped=True` and the
reason, not a failed cell. The timed region holds only the step: the batch is on the device
before warm-up starts. FLOPs are counted on one extra eager step; the CPU peak is measured once
per process (see bench.throughput.peaks).
"""

from __future__ import annotations

import math
import platform
import warnings

import torch

from bench.cells import CellResult, RunEnv
from bench.store import schema as S
from bench.throughput import flops as flops_mod
from bench.throughput import memory, peaks, timing, workloads

COLUMNS = [
    "workload", "target", "arch", "dataset", "batch_size", "precision", "channels_last", "compile",
    "seed", "device", "device_name", "torch_version", "cuda_version", "threads", "warmup",
    "repeats", "timing_method", "times_s", "median_s", "q1_s", "q3_s", "iqr_s", "images_per_step",
    "images_per_s", "flops_per_step", "achieved_tflops", "peak_tflops", "peak_source", "mfu",
    "peak_memory_bytes", "memory_kind", "skipped", "skip_reason",
]

# What torch.compile raises when it cannot compile (Dynamo, Inductor, the C++ toolchain).
COMPILE_ERRORS: tuple[type[BaseException], ...] = (torch._dynamo.exc.TorchDynamoException,)
try:
    from torch._inductor.exc import CppCompileError

    COMPILE_ERRORS += (CppCompileError,)
except ImportError:  # older torch: Dynamo wraps backend errors in BackendCompilerFailed
    pass


def run_throughput_cell(config: dict, inputs: dict[str, CellResult], env: RunEnv) -> CellResult:
    del inputs  # throughput times freshly initialised models; it needs no trained weights
    return CellResult(records={S.THROUGHPUT: [measure(config, env.device)]})


def measure(config: dict, device: str) -> dict:
    """The throughput row for a resolved throughput config on `device`."""
    row = base_row(config, device)
    reason = workloads.precision_unsupported(device, config["precision"])
    if reason is not None:
        return skipped(row, reason)
    with torch.random.fork_rng(devices=_rng_devices(device)):
        # Model initialisation, without touching the caller's RNG.
        torch.manual_seed(int(config["seed"]))
        workload = build_workload(config, device)
    try:
        with warnings.catch_warnings():
            # CPU autocast turns itself off with only a warning for a dtype it cannot do.
            warnings.filterwarnings("error", message=".*autocast.*not supported.*")
            warnings.filterwarnings("error", message=".*[Dd]isabling autocast.*")
            result = time_workload(workload, device, int(config["warmup"]), int(config["repeats"]))
    except COMPILE_ERRORS as exc:
        if not config["compile"]:
            raise
        return skipped(row, f"torch.compile failed: {type(exc).__name__}: {_brief(exc)}")
    except UserWarning as exc:
        return skipped(row, f"{config['precision']} autocast is not available here: {exc}")
    peak = peaks.peak_for(device, row["device_name"], config["precision"],
                          config.get("peak_tflops"))
    return finish_row(row, result, peak)


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


def build_workload(config: dict, device: str) -> workloads.Workload:
    from bench.data import load_dataset

    target, name = config["target"], config["workload"]
    data = load_dataset(config["dataset"], "train")
    x, y = _batch(data.x, data.y, int(config["batch_size"]))
    common = dict(device=device, precision=config["precision"], compiled=bool(config["compile"]),
                  seed=int(config["seed"]))
    if "gan" in target:
        gan = build_gan(target, data.channels, data.image_size, int(config["seed"]))
        gan.to(device, amp=config["precision"] == "fp16")
        real = (x * 2 - 1).to(device)
        if config["channels_last"]:
            (real,) = workloads.to_channels_last(gan.generator, real)
            workloads.to_channels_last(gan.discriminator)
        return workloads.gan_workload(name, gan, real, **common)

    model = build_model(target, (data.channels, *data.image_size), data.num_classes).to(device)
    x, y = x.to(device), y.to(device)
    if config["channels_last"]:
        (x,) = workloads.to_channels_last(model, x)
    optimizer = make_optimizer(model, target.get("train")) if name == "train-step" else None
    return workloads.classifier_workload(name, model, x, y, optimizer=optimizer,
                                         epsilon=float(config["epsilon"]),
                                         pgd_steps=int(config["pgd_steps"]), **common)


def build_model(target: dict, data_shape: tuple[int, int, int],
                num_classes: int) -> torch.nn.Module:
    from bench.models.build import build_classifier, load_user_model

    if target.get("arch") is not None:
        return build_classifier(target, data_shape, num_classes)
    return load_user_model(target, target["model"])


def build_gan(target: dict, channels: int, image_size: tuple[int, int], seed: int):
    from bench.gans import GANS

    return GANS.get(target["arch"])(channels, image_size, z_dim=target.get("z_dim"), init_seed=seed)


def make_optimizer(model: torch.nn.Module, train_cfg: dict | None) -> torch.optim.Optimizer:
    """The train recipe's optimiser, as bench.training.loop builds it (Adam 1e-3 without one)."""
    cfg = train_cfg or {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}
    lr, wd = float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                               weight_decay=wd)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)


def _batch(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch_size` examples, tiled when the split is smaller than one batch."""
    reps = math.ceil(batch_size / len(y))
    if reps > 1:
        x, y = x.repeat(reps, 1, 1, 1), y.repeat(reps)
    return x[:batch_size].contiguous(), y[:batch_size].contiguous()


# -- rows -------------------------------------------------------------------------------------


def base_row(config: dict, device: str) -> dict:
    target = config["target"]
    row = dict.fromkeys(COLUMNS)
    row |= {
        "workload": config["workload"],
        "target": target.get("model") or target.get("gan"),
        "arch": target.get("arch") or target.get("factory"),
        "dataset": config["dataset"]["name"],
        "batch_size": int(config["batch_size"]),
        "precision": config["precision"],
        "channels_last": bool(config["channels_last"]),
        "compile": bool(config["compile"]),
        "seed": int(config["seed"]),
        "device": device,
        "device_name": device_name(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "warmup": int(config["warmup"]),
        "repeats": int(config["repeats"]),
        "timing_method": timing.timing_method(device),
        "times_s": [],
        "skipped": False,
    }
    for col in ("median_s", "q1_s", "q3_s", "iqr_s", "images_per_s", "achieved_tflops",
                "peak_tflops", "mfu"):
        row[col] = math.nan
    return row


def skipped(row: dict, reason: str) -> dict:
    return row | {"skipped": True, "skip_reason": reason}


def finish_row(row: dict, result: dict, peak: peaks.Peak) -> dict:
    stats = timing.summarize(result["times"])
    achieved = flops_mod.achieved_tflops(result["flops"], stats.median_s)
    mfu = achieved / peak.tflops if peak.tflops and not math.isnan(achieved) else math.nan
    return row | {
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


def device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    from bench.provenance import cpu_name

    return cpu_name() if dev.type == "cpu" else platform.machine()


def _rng_devices(device: str) -> list:
    dev = torch.device(device)
    return [dev] if dev.type == "cuda" else []


def _brief(exc: BaseException, lines: int = 3, chars: int = 400) -> str:
    """The first few non-empty lines of an error message, on one line."""
    parts = [line.strip() for line in str(exc).splitlines() if line.strip()][:lines]
    return " ".join(parts)[:chars]
