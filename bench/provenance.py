"""What a run ran on: versions, device, machine, git state. Stored in every manifest."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ["bench", "torch", "torchvision", "torchattacks", "torch-fidelity", "numpy", "pandas",
            "scipy", "ray", "pyautoattack", "robustbench"]  # the last two: the reference extra


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def resolve_device(requested: str) -> str:
    """"auto" means CUDA when available, else CPU; an unavailable CUDA request is an error."""
    from bench.errors import UserError
    from bench.interrupts import import_held_back

    torch = import_held_back("torch")  # `bench run` imports torch here first

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"suite.device: {requested!r} requested but CUDA is not available here; "
                            "use \"auto\" or \"cpu\"")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise UserError(f"suite.device: {requested!r} but only {torch.cuda.device_count()} "
                            "CUDA device(s) are visible")
        return f"cuda:{index}"
    return requested


def versions() -> dict[str, str | None]:
    import torch

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    # The local version tag says which build (e.g. +cu130, +cpu); metadata drops it.
    out |= {"torch": torch.__version__, "torchvision": _torchvision_version()}
    return out


def _torchvision_version() -> str | None:
    """torchvision.__version__, read from its version.py: importing torchvision costs a second
    or more (it imports every model), which a run that never uses it should not pay."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(spec.submodule_search_locations[0], "version.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "__version__":
            return ast.literal_eval(node.value)
    return metadata.version("torchvision")


def device_info(device: str) -> dict:
    import torch

    info = {"device": device, "torch_threads": torch.get_num_threads(),
            "cuda_available": torch.cuda.is_available(), "cuda_version": torch.version.cuda}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info |= {"device_name": props.name, "device_capability": f"{props.major}.{props.minor}",
                 "device_memory_bytes": props.total_memory,
                 "cudnn_version": torch.backends.cudnn.version()}
    else:
        info |= {"device_name": cpu_name()}
    return info


def device_name(device: str) -> str:
    """The card's name on CUDA, the CPU model on the CPU: what result rows say they ran on."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return cpu_name() if dev.type == "cpu" else platform.machine()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(path: Path) -> dict:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine() -> dict:
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "cpu": cpu_name(),
            "python_executable": sys.executable}


def collect(device: str, code_path: Path) -> dict:
    return {"versions": versions(), "device": device_info(device), "machine": machine(),
            "git": git_state(code_path)}
