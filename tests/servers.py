"""Throwaway servers for the scale-out test backend: a PostgreSQL 15 cluster (initdb,
pg_ctl) and moto's S3 server, each on a free port of 127.0.0.1, started once per test
session and removed after it. Usable on its own: `python -m tests.servers` starts both,
prints their URLs and stops them on Ctrl-C (to try llmos against them by hand)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_BIN_DIRS = ["/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"]
MOTO_ACCESS_KEY = "testing"  # moto accepts any credentials unless told to check them


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bin(name: str) -> str:
    for folder in PG_BIN_DIRS:
        if os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql (.ci/run does)")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _wait_port(port: int, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A fresh cluster; yields its admin URL (`postgresql://postgres@127.0.0.1:PORT/postgres`)."""
    if url := os.environ.get("LLMOS_TEST_PG_URL"):
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="llmos-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    root.chmod(0o700)
    port = free_port()
    subprocess.run(
        _as_postgres([pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
    )
    subprocess.run(
        _as_postgres(
            [
                pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "30",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def moto_s3(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """moto's S3 server in its own process; yields its endpoint URL."""
    if (url := os.environ.get("LLMOS_TEST_S3_ENDPOINT")) and not extra_env:
        yield url
        return
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_port(port, 30, "moto_server", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def s3_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": MOTO_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": MOTO_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def make_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys()).create_bucket(Bucket=bucket)


def _keys() -> dict[str, str]:
    env = s3_env()
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


if __name__ == "__main__":
    with postgres() as pg, moto_s3() as s3:
        print(f"LLMOS_TEST_PG_URL={pg}\nLLMOS_TEST_S3_ENDPOINT={s3}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
