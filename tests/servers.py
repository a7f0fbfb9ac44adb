"""Throwaway servers for the scale-out test backend: a PostgreSQL 15 cluster (initdb,
pg_ctl) and moto's S3 server, each on a free port of 127.0.0.1, started once per test
session and removed after it; and Debian's nginx as a load balancer in front of `llmos
serve` replicas (per test, `nginx()`). Usable on its own: `python -m tests.servers` starts both,
prints their URLs and stops them on Ctrl-C (to try llmos against them by hand)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
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


def _wait_port(
    port: int, timeout: float, what: str, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def postgres(durable: bool = False) -> Iterator[str]:
    """A fresh cluster; yields its admin URL (`postgresql://postgres@127.0.0.1:PORT/postgres`).
    Tests run it with fsync off; `durable` keeps PostgreSQL's defaults (fsync on, full page
    writes), as a user runs it, for benchmarks of its commit rate."""
    if (url := os.environ.get("LLMOS_TEST_PG_URL")) and not durable:
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
        "-c max_connections=300 -c shared_buffers=64MB"
    )
    if not durable:
        options += " -c fsync=off -c full_page_writes=off"
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
def moto_s3(extra_env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """moto's S3 server in its own process on `host`; yields its endpoint URL."""
    if (url := os.environ.get("LLMOS_TEST_S3_ENDPOINT")) and not extra_env and host == "127.0.0.1":
        yield url
        return
    port = free_port()
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        _wait_port(port, 30, "moto_server", proc, host)
        yield f"http://{host}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


NGINX = "/usr/sbin/nginx"

# The balancer's configuration, as a user would write it in front of `llmos serve`
# replicas. Failover: `proxy_next_upstream error timeout` passes a request to the next
# replica when connecting fails or times out, for every method: the request never reached
# the dead replica, so nothing can be stored twice. Once a request has been sent, nginx
# (since 1.9.13) retries only idempotent methods (GET, HEAD, PUT, DELETE...): a POST
# whose replica dies mid-request is answered 502 and not replayed on another replica, as
# feedback has no idempotency key and a replay would store it twice. No upstream
# keepalive: a pooled connection to a replica that died fails only after the request is
# written, which turns a safe connect error into an unretryable 502 for every POST. A
# replica that failed once is left out for a second (`max_fails=1 fail_timeout=1s`), then
# tried again: while it is down, that try is a connect error passed on to the next one.
NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    log_format replicas '$request_method $uri $status upstream=$upstream_addr';
    access_log {root}/access.log replicas;
    upstream llmos {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 512m;
        location / {{
            proxy_pass http://llmos;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(upstreams: list[int], root: Path) -> Iterator[str]:
    """nginx in the foreground balancing over 127.0.0.1:`upstreams`, its configuration and
    logs under `root`; yields its URL and stops it (SIGQUIT, then SIGKILL) afterwards."""
    if not os.access(NGINX, os.X_OK):
        raise RuntimeError(f"{NGINX} not found: install the Debian package nginx (.ci/run does)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=1s;" for p in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""  # workers write the temp folders under root
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port, servers=servers, user=user))
    log = (root / "stderr.log").open("ab")
    proc = subprocess.Popen([NGINX, "-p", str(root), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, 15, "nginx", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop of the master and its worker
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


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


def llmos_serve(home: Path, port: int, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """`llmos serve` over workspace `home` as a real process (one thread, offline), its
    output appended to `log`; `wait_healthy` waits for it to answer."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "llmos.cli.main", "--home", str(home), "serve", "--port", str(port)]
    return subprocess.Popen([*command, *options], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_healthy(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float, what: str = "the server"
) -> None:
    """Until `proc` answers /healthz on `port`; an AssertionError with its log's tail when
    it exits first or `timeout` seconds pass (then it is killed)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{what} did not start: {log.read_text()[-2000:]}")
