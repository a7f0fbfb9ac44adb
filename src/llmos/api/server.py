"""Running the API: `serve` blocks (the `llmos serve` command); `ServerThread` runs it in
a background thread of the current process (tests, benchmarks, notebooks).

uvicorn handles graceful shutdown: on SIGINT/SIGTERM it stops accepting connections,
lets in-flight requests finish (up to `graceful_s`), then runs the app's lifespan
shutdown, which drains the batch queues. A generation may run longer than that, so the
runtime is told at the signal: generations still decoding shortly before the graceful
period ends are stopped, and their clients get an error naming the shutdown (a 503, or
an error event in a stream) instead of a connection cut.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from llmos.api.app import create_app
from llmos.core.errors import UsageError
from llmos.security.access import Policy
from llmos.serve.runtime import ServeConfig, ServeRuntime

if TYPE_CHECKING:
    from llmos.store.db import Store


def _server(
    store: Store, host: str, port: int, config: ServeConfig | None, policy: Policy | None, graceful_s: float
) -> Any:
    import uvicorn

    runtime = ServeRuntime(store, config)
    app = create_app(runtime, policy)
    proxies = list(runtime.config.trusted_proxies)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            runtime.begin_shutdown(graceful_s)
            super().handle_exit(sig, frame)

    settings = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=int(graceful_s),
        lifespan="on",
        # the client's address is the connection's (what the failed-authentication limiter
        # counts by): uvicorn by default believes X-Forwarded-For from 127.0.0.1, so any
        # local process, or a proxy that passes the header on, could name any address.
        # Only the proxies named with `--trusted-proxy` are believed.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    return Server(settings)


def serve(
    store: Store,
    host: str = "127.0.0.1",
    port: int = 8000,
    config: ServeConfig | None = None,
    policy: Policy | None = None,
    graceful_s: float = 30.0,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully and return (exit code 0).

    uvicorn re-raises the stopping signal once it has shut down; the no-op handlers
    installed here make that a normal return instead of death by signal.
    """
    import signal

    with socket.socket() as probe:  # a one-line error instead of uvicorn's log and exit
        # as uvicorn binds: a port whose last connections are in TIME_WAIT (a client held
        # a keep-alive connection) is free to listen on again at once
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port"
            ) from None
    server = _server(store, host, port, config, policy, graceful_s)
    _share_cores((config or ServeConfig()).workers)
    _freeze_startup_heap()
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _share_cores(workers: int) -> None:
    """Give each of `workers` batch threads its share of the cores (torch's intra-op threads,
    which ONNX Runtime sessions follow): two workers each spreading a forward pass over
    every core would fight over them. An explicit OMP_NUM_THREADS is left as it is."""
    import os

    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _freeze_startup_heap() -> None:
    """Keep the start-up heap out of garbage collection. With torch, transformers and the
    app imported, a server holds about half a million objects, and each of Python's full
    collections walked them all: 240 ms on this project's CPU, a stall for every request in
    flight. Frozen (they live as long as the process anyway), they are skipped; a full
    collection then took 5 ms with a model loaded. Objects made later (models, requests)
    are collected as usual. Only `llmos serve` does this: it owns its process."""
    import gc

    import peft  # noqa: F401  (what loading a model imports, so that it is frozen too)
    import transformers  # noqa: F401

    import llmos.models.build
    import llmos.train.predict  # noqa: F401

    gc.collect()
    gc.freeze()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """`with ServerThread(store) as url:` serves on a free local port until the block ends."""

    def __init__(
        self,
        store: Store,
        config: ServeConfig | None = None,
        port: int | None = None,
        policy: Policy | None = None,
    ) -> None:
        self.port = port or free_port()
        self.server = _server(store, "127.0.0.1", self.port, config, policy, 30.0)
        self.thread = threading.Thread(target=self.server.run, name="llmos-serve", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> ServeRuntime:
        return self.server.config.app.state.runtime

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on port {self.port}")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.runtime.begin_shutdown(30.0)
        self.server.should_exit = True
        self.thread.join(60)
