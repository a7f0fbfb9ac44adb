"""A real multi-node Ray cluster: a head and two worker nodes, each in its own network
namespace with its own address (veth pairs to a bridge), created and removed here. The
training spec is the local one plus `backend: ray` with the head's address; the
workspace's artifacts, and so Ray Train's checkpoints and results, are in an S3 server
(moto) on the bridge that every node reaches. A LoRA classifier trains with 2 DDP
workers on two different nodes to the local accuracy, and Ray Data batch prediction
across the nodes gives the local predictions.

Needs root (network namespaces); each node gets 1 CPU and 1 thread. The nodes share this
machine's file system, as the base model is installed on every node of a real cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmos.core.progress import SilentProgress
from tests import servers
from tests.conftest import make_rows, tiny_spec

RAY = str(Path(sys.executable).with_name("ray"))
GCS_PORT = 6379
# Every node's interface has this name in its namespace. torch's gloo (DDP on CPU) gives
# its peers the address the host name resolves to, which is a loopback address here (as on
# many hosts): on every node GLOO_SOCKET_IFNAME names the interface to use instead.
NODE_IFNAME = "llmos0"


@dataclass
class Cluster:
    address: str  # the head's GCS, HOST:PORT
    bridge_ip: str  # this (the test's) side of the bridge
    node_ips: list[str]
    head_ns: str  # where the driver runs: a Ray driver runs on a node of its cluster
    env: dict[str, str]  # what the nodes run with (the cluster's token, 1 thread)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def _namespaces(tag: str, subnet: str, names: list[str]) -> Iterator[list[str]]:
    """A bridge at SUBNET.1 and one namespace per name at SUBNET.2, .3 ... with a default
    route through the bridge; removed (with every process left in them) afterwards."""
    bridge = f"llbr{tag}"
    made: list[str] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, name in enumerate(names):
            ns, host_end, ns_end = f"ll{tag}{name}", f"lv{tag}{i}", f"lp{tag}{i}"
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", ns_end, "netns", ns)
            _ip("-n", ns, "link", "set", ns_end, "name", NODE_IFNAME)
            _ip("link", "set", host_end, "master", bridge, "up")
            _ip("-n", ns, "addr", "add", f"{subnet}.{i + 2}/24", "dev", NODE_IFNAME)
            _ip("-n", ns, "link", "set", NODE_IFNAME, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "default", "via", f"{subnet}.1")
        yield made
    finally:
        for ns in made:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:  # only processes inside this test's own namespaces
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _wait_port(host: str, port: int, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


@pytest.fixture
def ray_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("a Ray cluster in network namespaces needs root and iproute2 (`ip netns`)")
    # the cluster's own token: Ray's default one lives in ~/.ray/auth_token, which any other
    # Ray started on this machine by this user may create or replace meanwhile
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_AUTH_TOKEN_PATH": None}
    saved = {key: os.environ.get(key) for key in auth}
    tag = str(os.getpid() % 10000)
    subnet = f"10.{100 + os.getpid() % 100}.{os.getpid() // 100 % 250}"
    temp = Path(f"/tmp/llr{tag}")  # Ray's socket paths must stay short
    env = {
        **{k: v for k, v in os.environ.items() if k not in auth},
        **{k: v for k, v in auth.items() if v is not None},
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "RAY_USAGE_STATS_ENABLED": "0",
        "GLOO_SOCKET_IFNAME": NODE_IFNAME,
    }
    common = ["--num-cpus=1", "--disable-usage-stats", "--block"]
    logs = tmp_path / "ray-logs"
    logs.mkdir()
    try:
        with _namespaces(tag, subnet, ["h", "w1", "w2"]) as (head, *workers):
            ips = [f"{subnet}.{i + 2}" for i in range(3)]
            procs = []

            def start(ns: str, args: list[str], name: str) -> subprocess.Popen[bytes]:
                out = (logs / f"{name}.log").open("ab")
                argv = ["ip", "netns", "exec", ns, RAY, "start", *args, *common]
                procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT))
                return procs[-1]

            try:
                _set_env(auth)
                h = start(head, ["--head", f"--node-ip-address={ips[0]}", f"--port={GCS_PORT}",
                                 "--include-dashboard=false", f"--temp-dir={temp}"], "head")  # fmt: skip
                _wait_port(ips[0], GCS_PORT, 120, "the Ray head", h)
                joining = {
                    name: (ns, [f"--address={ips[0]}:{GCS_PORT}", f"--node-ip-address={ip}"])
                    for ns, ip, name in zip(workers, ips[1:], ("worker1", "worker2"))
                }
                started = {name: start(ns, args, name) for name, (ns, args) in joining.items()}
                # `ray start` gives a node's raylet 30 s to register (fixed in Ray): on a loaded
                # machine one may miss that, exit, and is started once more
                retried: set[str] = set()

                def restart_failed() -> None:
                    for name, proc in started.items():
                        if proc.poll() not in (None, 0) and name not in retried:
                            retried.add(name)
                            started[name] = start(*joining[name], name)

                _wait_nodes(f"{ips[0]}:{GCS_PORT}", 3, 180, logs, restart_failed)
                yield Cluster(f"{ips[0]}:{GCS_PORT}", f"{subnet}.1", ips, head, env)
            finally:
                import ray

                ray.shutdown()
                _set_env(saved)
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(10)
    finally:  # after the namespaces and every process in them are gone
        shutil.rmtree(temp, ignore_errors=True)


def _set_env(values: dict[str, str | None]) -> None:
    """Set (or, for None, remove) Ray's authentication variables in this process, and make
    Ray read them again (it caches its config and the token it loaded)."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    with contextlib.suppress(ImportError):
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def _wait_nodes(address: str, count: int, timeout: float, logs: Path, poll: Callable[[], None]) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address=address, log_to_driver=False, include_dashboard=False)
    deadline = time.monotonic() + timeout
    try:
        while len([n for n in ray.nodes() if n["Alive"]]) < count:
            poll()
            if time.monotonic() > deadline:
                tails = {p.name: p.read_text()[-1500:] for p in logs.iterdir()}
                raise AssertionError(f"only {len(ray.nodes())} of {count} Ray nodes joined: {tails}")
            time.sleep(0.5)
    finally:
        # only to watch the nodes join: a driver outside every node can ask the GCS, but
        # the objects it puts (a training config) never reach the workers
        ray.shutdown()


def test_lora_trains_on_two_nodes_and_ray_data_predicts_across_them(
    ray_cluster, tmp_path, monkeypatch, tiny_model_dir
):
    from llmos import Workspace
    from llmos.core.settings import Settings
    from llmos.store.s3 import S3Artifacts

    started = time.monotonic()
    for key, value in servers.s3_env().items():
        monkeypatch.setenv(key, value)
    with servers.moto_s3(host=ray_cluster.bridge_ip) as endpoint:
        servers.make_bucket(endpoint, "llmos-ray")
        home = tmp_path / "ws"
        Settings(home).write_store_config(None, f"s3://llmos-ray/ws?endpoint={endpoint}")
        ws = Workspace(home)
        ws.init()
        make_rows(300, seed=3).to_csv(tmp_path / "train.csv", index=False)
        make_rows(90, seed=4).to_csv(tmp_path / "test.csv", index=False)
        ws.import_dataset(tmp_path / "train.csv", "tr")
        ws.import_dataset(tmp_path / "test.csv", "te")
        spec = tiny_spec(
            tiny_model_dir,
            data={"train": "tr", "test": "te"},
            method={"type": "lora", "r": 4, "target_modules": ["query", "value"]},
            # 2 workers take half the steps of a local run (the batch is per worker): train
            # both to convergence, so that they are compared where they end, not midway
            train={"epochs": 8, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7},
        )
        local = ws.train({**spec, "name": "local"})
        backend = {"type": "ray", "workers": 2, "address": ray_cluster.address}
        out = tmp_path / "driver.json"
        env = {**ray_cluster.env, **servers.s3_env()}
        argv = ["ip", "netns", "exec", ray_cluster.head_ns, sys.executable, "-c", DRIVE,
                str(home), json.dumps(spec), json.dumps(backend), str(out)]  # fmt: skip
        run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        driven = json.loads(out.read_text())
        (ran_on,) = [line for line in driven["lines"] if line.startswith("Ray Train ranks ran on nodes")]
        nodes = ran_on.split("nodes ")[1].split(";")[0].split(", ")
        assert len(set(nodes)) == 2 and set(nodes) <= set(ray_cluster.node_ips), ran_on
        assert "checkpoint in s3://llmos-ray/ws/ray/" in ran_on
        distributed = ws.model("dist")
        assert distributed.spec["backend"]["address"] == ray_cluster.address
        accuracy = distributed.metrics["accuracy"]
        assert abs(accuracy - local.metrics["accuracy"]) <= 0.05, (accuracy, local.metrics["accuracy"])
        assert accuracy >= 0.85
        # the checkpoint Ray Train's rank 0 uploaded from its node is in the bucket
        s3 = S3Artifacts(f"s3://llmos-ray/ws?endpoint={endpoint}", tmp_path / "nocache")
        keys = s3.client.list_objects_v2(Bucket="llmos-ray", Prefix="ws/ray/").get("Contents", [])
        assert any(k["Key"].endswith("trainable.pt") for k in keys), [k["Key"] for k in keys]

        # Ray Data on the cluster predicts what the model predicts here
        assert driven["state"] == "succeeded", driven["log"]
        on_ray = ws.prediction_frame(ws.job(driven["job"]).result["predictions"])
        here = ws.predictor("dist").predict_frame(ws.dataset_frame("te"), "text")
        assert on_ray["text"].tolist() == here["text"].tolist()
        assert on_ray["prediction"].tolist() == here["prediction"].tolist()
        for label in ("card", "refund", "transfer"):
            assert on_ray[f"p_{label}"].tolist() == pytest.approx(here[f"p_{label}"].tolist(), abs=1e-5)
    print(
        f"\nRay in namespaces: local accuracy {local.metrics['accuracy']:.3f}, 2 nodes "
        f"{accuracy:.3f} ({ran_on}); {time.monotonic() - started:.0f} s once the cluster was up"
    )


# The driver, run on the head node: trains with the Ray backend and runs a Ray Data
# batch-prediction job, over the same workspace (its SQLite file and S3 bucket).
DRIVE = """
import json, sys
from pathlib import Path
from llmos import Workspace
from llmos.kernel import jobs
from llmos.kernel.worker import run_job
from tests.train.test_ray_cluster import _Lines

home, spec, backend, out = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
ws = Workspace(home)
lines = []
ws.train({**spec, "name": "dist", "backend": backend}, progress=_Lines(lines))
job = ws.submit_predict("dist", "te", backend=backend, start_kernel=False)
jobs.start(ws.store, job.id, threads=1)
state = run_job(ws.store, job.id)
log = "" if state == "succeeded" else ws.job_log(job.id)
Path(out).write_text(json.dumps({"lines": lines, "job": job.id, "state": state, "log": log}))
"""


class _Lines(SilentProgress):
    """A progress that keeps the run's log lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def log(self, message: str) -> None:
        self.lines.append(message)
