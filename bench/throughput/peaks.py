"""The peak FLOP/s that achieved FLOP/s is compared with.

- CUDA: a small table of dense (no structured sparsity) peaks from the vendors' datasheets, per
  precision: "fp32" is the non-tensor-core FP32 peak (PyTorch's default matmul precision;
  cuDNN convolutions may use TF32 and beat it), "bf16"/"fp16" the tensor-core peak with FP32
  accumulate. A suite's `peak_tflops` overrides the table.
- CPU: the best matmul rate at the row's precision measured on this machine in this process
  (cached per process, thread count and precision), so CPU "MFU" means "fraction of what a big
  matmul of that dtype reaches here". bf16 gets its own peak because CPUs differ wildly in it:
  with AVX512-BF16 it is about twice the fp32 rate, without it a small fraction.
- Any device, on request (`measured_matmul_peak`): the best rate of large square matmuls in
  each precision, measured now. benchmarks/gpu_pass.py compares with it, so its GPU MFU is
  against what this card reaches in this run, not against a datasheet ("tf32": fp32 inputs
  with TF32 tensor cores allowed, which cuDNN convolutions use by default).
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from dataclasses import dataclass

import torch

# (regex on torch.cuda.get_device_name(), label, {precision: dense peak TFLOP/s}); first match wins,
# so the more specific names come first.
GPU_PEAKS: list[tuple[str, str, dict[str, float]]] = [
    (r"H100.*(PCIe|NVL)", "H100 PCIe", {"fp32": 51.2, "bf16": 756.0, "fp16": 756.0}),
    (r"H100|H200|GH200", "H100 SXM", {"fp32": 66.9, "bf16": 989.4, "fp16": 989.4}),
    (r"A100", "A100", {"fp32": 19.5, "bf16": 312.0, "fp16": 312.0}),
    # A10G: an AWS part without an NVIDIA datasheet; commonly cited figures.
    (r"\bA10G\b", "A10G", {"fp32": 31.2, "bf16": 70.0, "fp16": 70.0}),
    (r"\bA10\b", "A10", {"fp32": 31.2, "bf16": 125.0, "fp16": 125.0}),
    (r"L40S", "L40S", {"fp32": 91.6, "bf16": 362.1, "fp16": 362.1}),
    (r"\bL4\b", "L4", {"fp32": 30.3, "bf16": 121.0, "fp16": 121.0}),
    (r"RTX 4090", "RTX 4090", {"fp32": 82.6, "bf16": 165.2, "fp16": 165.2}),
    (r"RTX 3090", "RTX 3090", {"fp32": 35.6, "bf16": 71.0, "fp16": 71.0}),
    (r"RTX A6000", "RTX A6000", {"fp32": 38.7, "bf16": 154.8, "fp16": 154.8}),
    (r"V100.*PCIe", "V100 PCIe", {"fp32": 14.0, "fp16": 112.0}),  # no bf16 before Ampere
    (r"V100", "V100 SXM2", {"fp32": 15.7, "fp16": 125.0}),
    (r"\bT4\b", "T4", {"fp32": 8.1, "fp16": 65.0}),
]

CPU_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# (n, repeats) of the n×n @ n×n matmuls whose best rate is the CPU peak. The small one
# fits between a busy machine's scheduler preemptions; the large one reaches the full rate
# where the small one cannot.
CPU_MATMULS = ((512, 50), (1024, 12))
# On a GPU: sizes at which cuBLAS reaches its full rate (an H100 needs n >= 4096).
GPU_MATMULS = ((4096, 20), (8192, 10))
MATMUL_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


@dataclass(frozen=True)
class Peak:
    tflops: float | None  # None: unknown (then MFU is NaN)
    source: str  # where the number comes from, stored in the row as peak_source


def gpu_peak(device_name: str, precision: str) -> Peak:
    for pattern, label, peaks in GPU_PEAKS:
        if re.search(pattern, device_name):
            if precision in peaks:
                return Peak(peaks[precision], f"table:{label}:{precision}")
            return Peak(None, f"table:{label} lists no {precision} peak")
    return Peak(None, f"unknown GPU {device_name!r}; set peak_tflops in the suite")


def peak_for(device: str | torch.device, device_name: str, precision: str,
             override_tflops: float | None = None) -> Peak:
    """The peak for MFU: the suite's override, else the GPU table, else the measured CPU peak."""
    if override_tflops is not None:
        return Peak(float(override_tflops), "suite:peak_tflops")
    if torch.device(device).type == "cuda":
        return gpu_peak(device_name, precision)
    if torch.device(device).type == "cpu":
        tflops = cpu_matmul_peak_tflops(torch.get_num_threads(), precision)
        sizes = "/".join(str(n) for n, _ in CPU_MATMULS)
        return Peak(tflops, f"measured:cpu-{precision}-matmul-{sizes} "
                            f"({torch.get_num_threads()} threads, best repeat)")
    return Peak(None, f"no peak known for device type {torch.device(device).type!r}")


def cpu_matmul_peak_tflops(threads: int, precision: str = "fp32") -> float:
    """Best TFLOP/s of the CPU_MATMULS in `precision` with `threads` torch threads, measured once
    per process.

    The best repeat, not the median: a peak is what the machine can do, and on a shared machine
    the slower repeats measure the neighbours. `threads` is part of the cache key (and must be
    the current thread count) because the peak scales with it.
    """
    if threads != torch.get_num_threads():
        raise ValueError(f"asked for the {threads}-thread peak but torch uses "
                         f"{torch.get_num_threads()} threads")
    if precision not in CPU_DTYPES:
        raise ValueError(f"no CPU matmul peak for precision {precision!r}")
    return _measured_cpu_peak(threads, precision)


@functools.lru_cache(maxsize=None)  # keyed by (threads, precision), however the caller spelt them
def _measured_cpu_peak(threads: int, precision: str) -> float:
    return max(measure_matmul_tflops(n, repeats, CPU_DTYPES[precision], "cpu")
               for n, repeats in CPU_MATMULS)


def measured_matmul_peak(device: str | torch.device, precision: str,
                         sizes: tuple[tuple[int, int], ...] | None = None) -> Peak:
    """The best rate of `sizes` ((n, repeats); default GPU_MATMULS on CUDA, else CPU_MATMULS)
    square matmuls in `precision` (one of MATMUL_PRECISIONS) on `device`, measured now."""
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"no matmul peak for precision {precision!r}")
    dev = torch.device(device)
    sizes = sizes or (GPU_MATMULS if dev.type == "cuda" else CPU_MATMULS)
    dtype = CPU_DTYPES["fp32" if precision == "tf32" else precision]
    with _tf32_matmuls(precision == "tf32"):
        tflops = max(measure_matmul_tflops(n, repeats, dtype, dev) for n, repeats in sizes)
    label = "/".join(str(n) for n, _ in sizes)
    return Peak(tflops, f"measured:{dev.type}-{precision}-matmul-{label} (best repeat)")


@contextlib.contextmanager
def _tf32_matmuls(enabled: bool):
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def measure_matmul_tflops(n: int, repeats: int, dtype: torch.dtype,
                          device: str | torch.device) -> float:
    """Best TFLOP/s over `repeats` n×n @ n×n matmuls (2·n³ FLOPs each), after two warm-ups."""
    from bench.throughput.timing import time_repeats

    gen = torch.Generator(device=device).manual_seed(0)  # made where they are used
    a = torch.randn(n, n, generator=gen, device=device).to(dtype)
    b = torch.randn(n, n, generator=gen, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    times = time_repeats(lambda: torch.mm(a, b, out=out), device, warmup=2, repeats=repeats,
                         clock=time.perf_counter)
    return 2.0 * n**3 / min(times) / 1e12
