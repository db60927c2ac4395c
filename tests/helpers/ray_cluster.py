"""A real Ray cluster for tests: `ray start --head` on free ports, in a temporary folder.

Stopped at the end by ending the processes it started (found by that folder in their command
lines), never with `ray stop`, which would stop every Ray instance of the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import closing, contextmanager

import psutil

# Flags of `ray start` whose defaults are fixed ports another Ray instance may hold.
PORT_FLAGS = ["--port", "--ray-client-server-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port",
              "--node-manager-port", "--object-manager-port"]


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Ray >= 2.5x clusters require a token by default, kept in ~/.ray/auth_token, which every Ray
# started on this machine shares: the test cluster and its drivers get a token of their own.
# (Older Ray ignores these variables.)
AUTH_TOKEN = secrets.token_hex(32)


def ray_env() -> dict[str, str]:
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=AUTH_TOKEN)
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    return env


@contextmanager
def local_cluster(num_cpus: int = 2):
    """Yields (address, temp dir) of a one-node cluster with `num_cpus` CPUs and no GPU."""
    temp_dir = tempfile.mkdtemp(prefix="rc")  # short: Ray's socket paths must stay < 108 chars
    ports = {flag: free_port() for flag in PORT_FLAGS}
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
           f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}", "--num-gpus=0",
           "--include-dashboard=false", "--disable-usage-stats",
           "--object-store-memory=100000000"]
    cmd += [f"{flag}={port}" for flag, port in ports.items()]
    try:
        subprocess.run(cmd, check=True, capture_output=True, env=ray_env(), timeout=180)
        yield f"127.0.0.1:{ports['--port']}", temp_dir
    finally:
        stop_processes_under(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def processes_under(temp_dir: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in arg for arg in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def stop_processes_under(temp_dir: str) -> None:
    procs = processes_under(temp_dir)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
