"""The timing core: which clock for which device, what is timed, the statistics, peaks, memory.

The CUDA branch runs here without a GPU: only the device check (`torch.cuda.is_available`) is
patched, and the event factory is injected, as `time_repeats` allows.
"""

import inspect
import math
import mmap
import time

import numpy as np
import pytest
import torch

from bench.throughput import flops, memory, peaks, timing, workloads


class FakeEvent:
    """Stands in for torch.cuda.Event: a record() stamps a tick of a shared fake GPU clock."""

    log: list = []
    tick = 0.0

    def __init__(self, enable_timing: bool = False):
        self.enable_timing = enable_timing
        self.t = None

    def record(self):
        FakeEvent.tick += 1.0
        self.t = FakeEvent.tick
        FakeEvent.log.append(("record", self))

    def synchronize(self):
        FakeEvent.log.append(("synchronize", self))

    def elapsed_time(self, end) -> float:
        assert self.enable_timing and end.enable_timing, "timing events need enable_timing=True"
        return (end.t - self.t) * 1000.0  # milliseconds, like CUDA


def no_clock():
    raise AssertionError("perf_counter must not be used on CUDA")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    FakeEvent.log, FakeEvent.tick = [], 0.0
    return FakeEvent


def test_the_clock_is_a_function_of_the_device(monkeypatch):
    assert timing.timing_method("cpu") == "perf-counter"
    assert timing.timing_method(torch.device("cpu")) == "perf-counter"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert timing.timing_method("cuda") == "cuda-event"
    assert timing.timing_method("cuda:1") == "cuda-event"
    assert timing.timing_method("cpu") == "perf-counter"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        timing.timing_method("cuda")


def test_cuda_uses_events_around_every_repeat_and_no_host_clock(fake_cuda):
    calls = []

    def step():
        calls.append(len(fake_cuda.log))  # how many event operations happened before this call

    times = timing.time_repeats(step, "cuda", warmup=2, repeats=4, event_factory=fake_cuda,
                                clock=no_clock)
    assert len(calls) == 2 + 4
    assert calls[:2] == [0, 0]  # warm-up: nothing recorded yet
    # Then: drain (record + synchronize), and per repeat start.record -> step -> end.record.
    ops = [op for op, _ in fake_cuda.log]
    assert ops[:2] == ["record", "synchronize"]
    assert ops[2:-1] == ["record", "record"] * 4
    assert ops[-1] == "synchronize"  # the host waits once, after the last repeat
    assert calls[2:] == [3, 5, 7, 9]  # each timed call sits between its start and end events
    timed_events = [e for op, e in fake_cuda.log[2:-1]]
    assert all(e.enable_timing for e in timed_events)
    assert times == [1.0, 1.0, 1.0, 1.0]  # 1000 ms per tick -> seconds


def test_cpu_uses_perf_counter_and_no_events(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # even with CUDA around

    def no_events(*args, **kwargs):
        raise AssertionError("CUDA events must not be used on the CPU")

    ticks = iter(np.arange(0.0, 100.0, 0.5))
    calls = []
    times = timing.time_repeats(lambda: calls.append(1), "cpu", warmup=3, repeats=5,
                                event_factory=no_events, clock=lambda: float(next(ticks)))
    assert len(calls) == 3 + 5
    assert times == [0.5] * 5  # one clock read before and one after each timed call
    # The real perf_counter by default: its readings, whatever the machine's load.
    assert inspect.signature(timing.time_repeats).parameters["clock"].default is time.perf_counter
    assert all(t >= 0 for t in timing.time_repeats(lambda: None, "cpu", warmup=0, repeats=3))


def test_time_repeats_rejects_nonsense():
    with pytest.raises(ValueError):
        timing.time_repeats(lambda: None, "cpu", warmup=0, repeats=0)
    with pytest.raises(ValueError):
        timing.time_repeats(lambda: None, "cpu", warmup=-1, repeats=1)


def test_summary_is_median_and_quartiles_of_every_repeat():
    s = timing.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.median_s, s.q1_s, s.q3_s, s.iqr_s) == (3.0, 2.0, 4.0, 2.0)
    assert (s.min_s, s.max_s, s.n) == (1.0, 5.0, 5)
    x = np.random.default_rng(0).exponential(size=101)
    s = timing.summarize(list(x))
    assert s.median_s == pytest.approx(np.median(x))
    assert s.iqr_s == pytest.approx(np.subtract(*np.percentile(x, [75, 25])))
    with pytest.raises(ValueError):
        timing.summarize([])


def test_flop_counter_counts_two_flops_per_multiply_add():
    lin = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(8, 32)
    assert flops.count_flops(lambda: lin(x)) == 2 * 8 * 32 * 16
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    img = torch.randn(2, 3, 5, 5)
    assert flops.count_flops(lambda: conv(img)) == 2 * 2 * 4 * 5 * 5 * 3 * 3 * 3
    # Forward + backward: the backward of a linear layer costs twice its forward.
    w = torch.nn.Linear(32, 16, bias=False)
    fwd_bwd = flops.count_flops(lambda: w(x.requires_grad_(True)).sum().backward())
    assert fwd_bwd == 3 * 2 * 8 * 32 * 16
    assert flops.achieved_tflops(2_000_000_000_000, 2.0) == 1.0
    assert math.isnan(flops.achieved_tflops(0, 1.0))


@pytest.mark.parametrize("name, precision, expected", [
    ("NVIDIA A100-SXM4-80GB", "bf16", 312.0),
    ("NVIDIA A100-PCIE-40GB", "fp32", 19.5),
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4),
    ("NVIDIA H100 PCIe", "fp16", 756.0),
    ("Tesla V100-SXM2-16GB", "fp16", 125.0),
    ("Tesla T4", "fp32", 8.1),
    ("NVIDIA L4", "bf16", 121.0),
    ("NVIDIA GeForce RTX 3090", "bf16", 71.0),
    ("NVIDIA GeForce RTX 4090", "fp16", 165.2),
    ("NVIDIA A10G", "bf16", 70.0),
    ("NVIDIA A10", "bf16", 125.0),
])
def test_gpu_peak_table(name, precision, expected):
    peak = peaks.gpu_peak(name, precision)
    assert peak.tflops == expected
    assert peak.source.startswith("table:")


def test_peak_unknowns_and_override():
    assert peaks.gpu_peak("Tesla V100-SXM2-16GB", "bf16").tflops is None  # no bf16 on Volta
    unknown = peaks.gpu_peak("Some Future GPU", "fp32")
    assert unknown.tflops is None and "peak_tflops" in unknown.source
    assert peaks.peak_for("cuda", "NVIDIA A100", "bf16", override_tflops=100.0) == peaks.Peak(
        100.0, "suite:peak_tflops")
    assert peaks.peak_for("cuda", "NVIDIA A100", "bf16").tflops == 312.0


def test_cpu_peak_is_measured_once_per_process():
    threads = torch.get_num_threads()
    first = peaks.cpu_matmul_peak_tflops(threads)
    assert first > 0
    assert peaks.cpu_matmul_peak_tflops(threads) == first  # cached, not re-measured
    peak = peaks.peak_for("cpu", "some cpu", "fp32")
    assert peak.tflops == first and peak.source.startswith("measured:cpu-fp32-matmul")
    with pytest.raises(ValueError):
        peaks.cpu_matmul_peak_tflops(threads + 1)


def test_cpu_peak_is_per_precision():
    threads = torch.get_num_threads()
    bf16 = peaks.peak_for("cpu", "some cpu", "bf16")
    assert bf16.source.startswith("measured:cpu-bf16-matmul")
    assert bf16.tflops == peaks.cpu_matmul_peak_tflops(threads, "bf16") > 0
    with pytest.raises(ValueError, match="int8"):
        peaks.cpu_matmul_peak_tflops(threads, "int8")


def test_precision_support():
    assert workloads.precision_unsupported("cpu", "fp32") is None
    assert workloads.precision_unsupported("cpu", "bf16") is None
    assert "fp16" in workloads.precision_unsupported("cpu", "fp16")
    assert workloads.precision_unsupported("cuda", "fp16", capability=(7, 0)) is None
    assert "Ampere" in workloads.precision_unsupported("cuda", "bf16", capability=(7, 5))
    assert workloads.precision_unsupported("cuda", "bf16", capability=(8, 0)) is None


def test_cpu_peak_memory_sees_an_allocation_inside_the_region():
    kind = memory.reset_peak("cpu")
    assert kind in ("peak_rss", "rss")
    before = memory.read_peak("cpu", kind)
    block = touched_anonymous_pages(64 * 2**20)  # fresh pages: no allocator can reuse them
    after = memory.read_peak("cpu", kind)
    block.close()
    assert before > 0
    assert after - before >= 60 * 2**20  # peak or current RSS: the block is still alive
    if kind == "peak_rss":
        memory.reset_peak("cpu")
        assert memory.read_peak("cpu", kind) < after  # the reset forgets the freed block


def touched_anonymous_pages(nbytes: int) -> mmap.mmap:
    block = mmap.mmap(-1, nbytes)
    for offset in range(0, nbytes, mmap.PAGESIZE):
        block[offset] = 1
    return block


def test_a_peak_reset_that_does_not_take_falls_back_to_current_rss(tmp_path, monkeypatch):
    touched_anonymous_pages(64 * 2**20).close()  # the process peak is now well above its RSS
    # A kernel or sandbox that accepts the write to clear_refs and resets nothing:
    monkeypatch.setattr(memory, "PROC_CLEAR_REFS", tmp_path / "clear_refs")
    assert memory.reset_peak("cpu") == "rss"
    assert memory.read_peak("cpu", "rss") == pytest.approx(memory.current_rss_bytes(), rel=0.05)


def test_measured_matmul_peak_is_the_best_size_in_the_precisions_dtype(monkeypatch):
    calls = []

    def fake(n, repeats, dtype, device):
        calls.append((n, repeats, dtype, torch.backends.cuda.matmul.allow_tf32))
        return n / 1000

    monkeypatch.setattr(peaks, "measure_matmul_tflops", fake)
    before = torch.backends.cuda.matmul.allow_tf32
    peak = peaks.measured_matmul_peak("cpu", "tf32", ((64, 3), (256, 2)))
    assert peak == peaks.Peak(0.256, "measured:cpu-tf32-matmul-64/256 (best repeat)")
    assert calls == [(64, 3, torch.float32, True), (256, 2, torch.float32, True)]
    assert torch.backends.cuda.matmul.allow_tf32 == before  # put back
    assert peaks.measured_matmul_peak("cpu", "bf16", ((8, 1),)).tflops == 0.008
    assert calls[-1][2:] == (torch.bfloat16, before)
    with pytest.raises(ValueError, match="int8"):
        peaks.measured_matmul_peak("cpu", "int8")


def test_a_real_matmul_peak_is_measured_on_the_cpu():
    peak = peaks.measured_matmul_peak("cpu", "fp32", ((64, 3),))
    assert 0 < peak.tflops < 100  # a rate, in TFLOP/s
