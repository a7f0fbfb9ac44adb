"""A warm parent for worker processes: imports torch, transformers and the job handlers once,
then forks one worker per job attempt on request.

Why: a worker started as a new Python process spends 3 s (idle machine) to 16 s (two busy
cores) importing torch and transformers before it touches its job, while a tiny job
trains in 0.04 s; 100 queued jobs took 941 s, almost all of it imports. A fork of a
process that has them loaded starts in a few milliseconds (the pages are shared until
written). Android's zygote and Ray's pre-started workers do the same.

Safety of fork: the zygote is single-threaded, never runs a torch operation (so no
OpenMP or MKL pool exists yet, and the child's `torch.set_num_threads` sets the job's
share), never opens the database, and never initialises CUDA. Each child starts its own
session (so `killpg` ends it and what it starts, and Ctrl-C on a foreground kernel does
not reach it), sends its output to the job's log file and runs `llmos.kernel.worker` as
the `python -m` worker would.

Protocol (the scheduler's `Zygote` speaks it over the zygote's stdin and stdout, one JSON
object per line): a request `{"home", "job", "log", "env"}` is answered
`{"pid": N}` (or `{"error": "..."}`); when a child ends the zygote says
`{"exit": pid, "code": code}` with Popen's convention (negative: killed by that signal).
If the zygote cannot start or dies, the scheduler starts workers as new processes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import IO, Any

PRELOAD = (
    "torch",
    "transformers",
    "peft",
    "llmos.kernel.worker",
    "llmos.train.jobs",
    "llmos.adapt.jobs",
    "llmos.train.loop",
    "llmos.models.build",
)


def _child(request: dict[str, Any]) -> int:
    """In the forked child: become the job's worker process."""
    os.setsid()
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115  (the process's own descriptors)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.update(request.get("env") or {})
    from llmos.kernel import worker

    return worker.main(["--home", request["home"], str(request["job"])])


def _say(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(stdin: IO[str], stdout: IO[str]) -> None:
    """The zygote's loop: fork on each request, report each child's end, stop at EOF."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    _say(stdout, {"ready": os.getpid()})
    children: set[int] = set()
    buffered = ""
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.05)
        if readable:
            chunk = os.read(stdin.fileno(), 65536).decode()
            if not chunk:
                return  # the scheduler went away; running workers carry on
            buffered += chunk
            while "\n" in buffered:
                line, buffered = buffered.split("\n", 1)
                if not line.strip():
                    continue
                request = json.loads(line)
                try:
                    pid = os.fork()
                except OSError as exc:
                    _say(stdout, {"error": f"fork failed: {exc}"})
                    continue
                if pid == 0:
                    code = 1
                    try:
                        code = _child(request)
                    except BaseException:  # the worker records its own failures; this is a crash
                        import traceback

                        traceback.print_exc()
                    finally:
                        with contextlib.suppress(Exception):
                            sys.stdout.flush()
                            sys.stderr.flush()
                        os._exit(code if isinstance(code, int) else 1)
                children.add(pid)
                _say(stdout, {"pid": pid})
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                _say(stdout, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


class ZygoteChild:
    """A worker forked by the zygote, with the part of `subprocess.Popen` the scheduler uses."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid = zygote, pid

    def poll(self) -> int | None:
        code = self.zygote.exits.get(self.pid)
        if code is not None:
            return code
        if not self.zygote.alive():  # the zygote died: its children were reparented
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return 1  # gone, with an exit code nobody kept; the job's state tells
            except PermissionError:
                return None
        return None


class Zygote:
    """The scheduler's side: start the zygote, ask it for workers, collect their exits."""

    def __init__(self, python: str = sys.executable, timeout_s: float = 120.0) -> None:
        """Start the zygote; it imports in the background, and the first `spawn` waits
        for it (up to `timeout_s`)."""
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.proc = subprocess.Popen(
            [python, "-m", "llmos.kernel.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.exits: dict[int, int] = {}
        self._replies: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._ready = False
        self._reader = threading.Thread(target=self._read, name="llmos-zygote", daemon=True)
        self._reader.start()
        self.timeout_s = timeout_s

    def _wait_ready(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self.proc.poll() is not None, self.timeout_s)
        if not self._ready:
            self.close()
            raise OSError("the worker zygote did not start")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if "ready" in message:
                    self._ready = True
                elif "exit" in message:
                    self.exits[int(message["exit"])] = int(message["code"])
                else:
                    self._replies.append(message)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, home: str, job_id: int, log: str, env: dict[str, str]) -> ZygoteChild:
        """Fork a worker for `job_id`; `OSError` when the zygote cannot."""
        self._wait_ready()
        if not self.alive():
            raise OSError("the worker zygote is not running")
        request = {"home": home, "job": job_id, "log": log, "env": env}
        assert self.proc.stdin is not None
        with self._cond:
            try:
                self.proc.stdin.write(json.dumps(request) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise OSError(f"the worker zygote is gone: {exc}") from None
            deadline = time.monotonic() + 30
            while not self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    raise OSError("the worker zygote did not answer")
                self._cond.wait(left)
            reply = self._replies.pop(0)
        if "pid" not in reply:
            raise OSError(str(reply.get("error", "the worker zygote failed")))
        return ZygoteChild(self, int(reply["pid"]))

    def close(self) -> None:
        """Stop the zygote (its running children carry on in their own sessions)."""
        with contextlib.suppress(Exception):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        if self.proc.poll() is None:
            self.proc.kill()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
