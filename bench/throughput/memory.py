"""Peak memory of a measured region: the CUDA allocator's peak, or the peak RSS on the CPU.

Call `reset_peak(device)` right before the region and `read_peak(device, reset_kind)` right
after it. On Linux the process's peak RSS (VmHWM) is reset by writing "5" to
/proc/self/clear_refs, so the CPU figure is the region's peak RSS ("peak_rss"); where that is
not possible, the current RSS after the region is reported instead ("rss"). Some kernels and
sandboxes accept the write but leave VmHWM alone, so the reset is checked, not assumed.
"""

from __future__ import annotations

from pathlib import Path

import torch

PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")
# After a working reset VmHWM equals VmRSS; RSS may grow a little between the two reads.
RESET_SLACK_KIB = 1024


def reset_peak(device: str | torch.device) -> str:
    """Reset the peak counter; returns the memory_kind that `read_peak` will then report."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        return "cuda_max_allocated"
    try:
        PROC_CLEAR_REFS.write_text("5")
    except OSError:
        return "rss"
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    if hwm is None or rss is None or hwm > rss + RESET_SLACK_KIB:
        return "rss"  # the write was accepted but the peak was not reset
    return "peak_rss"


def read_peak(device: str | torch.device, kind: str) -> int | None:
    """Bytes for the memory_kind returned by `reset_peak`."""
    dev = torch.device(device)
    if kind == "cuda_max_allocated":
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev))
    if kind == "peak_rss":
        kib = _status_kib("VmHWM")
        return None if kib is None else kib * 1024
    if kind == "rss":
        return current_rss_bytes()
    raise ValueError(f"unknown memory kind {kind!r}")


def current_rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


def _status_kib(key: str) -> int | None:
    try:
        text = PROC_STATUS.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # "VmHWM:   123456 kB"
    return None
