"""Joining or starting Ray, and what its nodes can hold: the Ray executor's view of a cluster.

Everything that can go wrong before a cell runs ends here as one line (`UserError`, exit 2):
Ray missing, an address that does not answer (Ray itself would retry it for minutes), a
cluster of another Ray or Python version, and a per-cell request that no node can hold (Ray
would queue that task forever).
"""

from __future__ import annotations

import logging
import signal
import socket
import threading

from bench.errors import UserError

REACH_TIMEOUT_SECONDS = 5.0  # a HOST:PORT that does not accept a connection by then is down


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install \"bench[ray]\"") from None
    return ray


def connect(ray, address: str | None) -> bool:
    """Join the cluster at `address`, or start a private Ray for `None`.

    Returns True if this call started Ray (the caller then shuts it down); False if Ray was
    already initialised in this process (a notebook, a test), which is used as it is.
    """
    if ray.is_initialized():
        return False
    check_reachable(address)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        # Ray's INFO lines ("Connecting to existing Ray cluster...") would bury bench's own.
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise UserError(f"cannot connect to a Ray cluster at {address!r}: {one_line(exc)} "
                        "(start one with `ray start --head`, or leave out --ray-address to "
                        "start a local instance)") from None
    except RuntimeError as exc:  # a version mismatch, a cluster that refuses this driver
        raise UserError(f"cannot join the Ray cluster at {address!r}: {one_line(exc)} "
                        "(every node and the driver need the same Ray and Python)") from None
    finally:
        if previous is not None:  # None: not settable from Python (set in C, or not main)
            # ray.init replaces the SIGTERM handler with one that exits at once; the
            # runner's handler turns SIGTERM into a clean interrupt instead.
            signal.signal(signal.SIGTERM, previous)
    return True


def check_reachable(address: str | None) -> None:
    """For an explicit HOST:PORT, fail fast when nothing listens there."""
    if address is None or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"ray address {address!r}: expected HOST:PORT, \"auto\" or ray://...")
    try:
        with socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach a Ray cluster at {address!r}: {reason} (is `ray start "
                        f"--head --port={port}` running there? `ray status --address "
                        f"{address}` checks)") from None


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def node_resources(ray) -> list[dict[str, float]]:
    """The total resources of every live node."""
    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]


def cells_per_node(resources: dict[str, float], request: dict[str, float]) -> int:
    """How many cells asking `request` one node can run at once."""
    fits = [resources.get(name, 0.0) / amount for name, amount in request.items() if amount > 0]
    return int(min(fits)) if fits else 0


def capacity(ray, request: dict[str, float]) -> int:
    """How many cells the cluster can run at once: node by node, as Ray places tasks."""
    return sum(cells_per_node(node, request) for node in node_resources(ray))


def check_feasible(ray, request: dict[str, float], why: str) -> None:
    """Refuse a request no live node can hold, naming the request and the nodes."""
    nodes = node_resources(ray)
    if any(cells_per_node(node, request) >= 1 for node in nodes):
        return
    have = "; ".join(describe(node, request) for node in nodes) or "no live node"
    raise UserError(f"ray executor: no node of the cluster can run a cell: each asks for "
                    f"{describe(request, request)} ({why}), and the cluster has {have}")


def describe(resources: dict[str, float], names) -> str:
    return ", ".join(f"{name}={resources.get(name, 0.0):g}" for name in names)
