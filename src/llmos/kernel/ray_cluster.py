"""Connecting to Ray: the one place that calls `ray.init`, so that every Ray user (Ray
Train, Ray Data) fails the same clear way when the cluster is not there.

`ray.init` on an unreachable address can retry for minutes; a job should instead fail
within its `connect_timeout` with the reason recorded. So an explicit `host:port` is
probed with a plain TCP connection first (refused or silent: a one-line error at once),
and `ray.init` on a remote address runs under the same deadline. A Ray started on this
machine is started in the calling thread: Ray ends the processes it starts when the
thread that started them ends.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from llmos.core.errors import JobError, UsageError, first_line

RAY_EXTRA = "pip install 'llmos[ray]'"


def require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(f"backend 'ray' needs Ray: {RAY_EXTRA}") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """`ray://host:10001` or `host:6379` -> (host, port); None for `auto`."""
    if address == "auto":
        return None
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"Ray address {address!r}: expected auto, ray://HOST:PORT or HOST:PORT")
    return host, int(port)


def connect(address: str | None, num_cpus: int, timeout: float = 30.0) -> Any:
    """Connect to the cluster at `address` (None: a Ray on this machine, started when none
    runs); return the `ray` module. Raises JobError within `timeout` seconds when the
    cluster cannot be reached, and at once when it has fewer than `num_cpus` CPUs (Ray
    would otherwise wait for them forever)."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is not None:
        target = _host_port(address)
        if target is not None:
            try:
                socket.create_connection(target, timeout=min(timeout, 10.0)).close()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise JobError(f"cannot reach the Ray cluster at {address}: {reason}") from None
    if not ray.is_initialized():
        _init(ray, address, num_cpus, timeout)
    have = int(ray.cluster_resources().get("CPU", 0))
    if have < num_cpus:
        if address is None:  # the Ray this process started is too small: start a bigger one
            ray.shutdown()
            _init(ray, address, num_cpus, timeout)
        else:
            raise JobError(f"the Ray cluster at {address} has {have} CPUs; this job needs {num_cpus}")
    return ray


def _init(ray: Any, address: str | None, num_cpus: int, timeout: float) -> None:
    options: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
    if address is None:
        # in this thread: Ray ties the processes it starts to the thread that starts them
        ray.init(num_cpus=max(num_cpus, os.cpu_count() or 1), **options)
        return
    failure: list[BaseException] = []

    def init() -> None:
        try:
            ray.init(**options)
        except Exception as exc:  # reported below as one line
            failure.append(exc)

    thread = threading.Thread(target=init, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise JobError(f"cannot reach the Ray cluster at {address}: no answer within {timeout:.0f}s")
    if failure:
        raise JobError(f"cannot connect to the Ray cluster at {address}: {first_line(failure[0])}")
