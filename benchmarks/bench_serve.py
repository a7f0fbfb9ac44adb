"""Serving throughput, CPU per request and memory: `llmos deploy` (its default) against
the strongest peer an expert would set up, Ray Serve, and a plain FastAPI server.

(a) Throughput. One MiniLM intent classifier (full fine-tuning, 1 epoch on the bundled
12-intent Banking77 demo set). At each level of concurrent clients (default 1, 8, 32
and 64), each client sends one-text requests back to back for `--duration` seconds to
- llmos: `llmos serve` with the classifier deployed with no flag (the default: ONNX
  Runtime, fp32, for a whole classifier on a CPU; requests batched per model), and with
  `--optimize torch` (the opt-out) and `--optimize int8`;
- ray-serve (the strong peer): Ray Serve with `@serve.batch` (up to 64 requests, 2 ms
  wait) over the same ONNX graph llmos exported (read from its cache), the classifier's
  own tokenizer, one replica per core with one ONNX Runtime thread each;
- plain (the weak baseline): a FastAPI app whose route calls a transformers
  `pipeline("text-classification")` per request, over the same fine-tuned MiniLM encoder
  weights (a `BertForSequenceClassification`: the same compute, its own head), as a
  simple server would. FastAPI runs the plain route in its thread pool, so it runs one
  request per core at once; llmos runs `--workers` batch threads (default: one per core).
Every server runs in processes of its own with one thread per forward pass. For each
one the CPU time of its whole process tree (Ray: driver, GCS, raylet, proxy, controller
and replicas) over the timed window is divided by the requests answered; llmos's is set
beside the CPU time of the bare ONNX Runtime forward pass (one thread) over batches of
the size its server ran (the mean of its `llmos_batch_inputs` histogram), per request.
(b) Memory. 100 MiniLM-LoRA deployments (one LoRA model trained, 99 copies with
perturbed adapter and head weights, each registered and deployed) on one `llmos serve`:
resident memory after the first deployment has answered and after all 100 have, the
pager's own accounting, and the latency of each adapter's first (cold) request.

Prints the tables and writes `benchmarks/results/bench_serve.json` (with `--adapters 0`,
the memory figures of the previous result file are kept, marked so). The load generator
shares the CPU with the server under test; figures taken while other work runs on the
machine are labelled "loaded" (`--loaded`).

    python benchmarks/bench_serve.py                # about 8 minutes on two cores
    python benchmarks/bench_serve.py --duration 10 --levels 32 --adapters 0 --loaded
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from common import machine, write_result

DEMO = Path(__file__).resolve().parents[1] / "src" / "llmos" / "demo"
SERVER_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

PLAIN_SERVER = """
import sys, torch
torch.set_num_threads(1)
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], num_labels=int(sys.argv[3]))
classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(sys.argv[2]),
                    top_k=None, device=-1)
app = FastAPI()

class Body(BaseModel):
    inputs: list[str]

@app.post("/predict")
def predict(body: Body):
    return {"predictions": [classify(text) for text in body.inputs]}
"""

# Ray Serve as its documentation sets up a batched CPU model: `@serve.batch` gathers the
# concurrent single-text calls of a replica into one forward pass, and the replicas (one
# per core) each run one ONNX Runtime thread over the same graph llmos exported.
RAY_SERVER = """
import json, sys, time
import numpy as np
import onnxruntime as ort
import ray
from ray import serve
from starlette.requests import Request
from transformers import AutoTokenizer

graph, tokenizer_dir, config_path, port, replicas, max_batch = sys.argv[1:7]
config = json.load(open(config_path))
labels, max_length = config["output"]["labels"], config["input"]["max_length"]
ray.init(num_cpus=int(replicas), include_dashboard=False, log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(port)})

@serve.deployment(num_replicas=int(replicas), max_ongoing_requests=256, ray_actor_options={"num_cpus": 1})
class Classifier:
    def __init__(self):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    @serve.batch(max_batch_size=int(max_batch), batch_wait_timeout_s=0.002)
    async def classify(self, texts):
        enc = self.tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="np")
        logits = self.session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                         "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return [{"label": labels[int(p.argmax())], "score": round(float(p.max()), 6),
                 "probabilities": {l: round(float(v), 6) for l, v in zip(labels, p)}} for p in probs]

    async def __call__(self, request: Request):
        body = await request.json()
        return {"predictions": [await self.classify(text) for text in body["inputs"]]}

serve.run(Classifier.bind(), route_prefix="/predict")
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def start(cmd: list[str], url: str, route: str | None = None) -> subprocess.Popen[bytes]:
    """Start a server and wait until it answers: `route` a prediction (Ray's proxy answers
    before its replicas are up; llmos loads the model on the first request), else /docs."""
    proc = subprocess.Popen(cmd, env=SERVER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 900  # Ray takes minutes to come up on a busy 2-core machine
    while True:
        try:
            if route is None:
                httpx.get(url + "/docs", timeout=2)
                return proc
            if httpx.post(url + route, json={"inputs": ["hello"]}, timeout=120).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            detail = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            raise SystemExit(f"server did not start: {detail}") from None
        time.sleep(0.5)


def tree_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds of a server's process and every process under it (Ray
    starts its GCS, raylet, proxy, controller and replica workers below its driver)."""
    import psutil

    total = 0.0
    root = psutil.Process(proc.pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a process that ended between the listing and the read
            continue
    return total


def llmos_serve(home: Path, port: int, *options: str) -> list[str]:
    """The command line of `llmos serve` over `home` (tokens off: the load is anonymous)."""
    cmd = [sys.executable, "-m", "llmos.cli.main", "--home", str(home), "serve", "--insecure-no-auth"]
    return [*cmd, "--port", str(port), *options]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a server and everything it started (Ray's processes too)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    for child in children:
        try:
            child.kill()
        except psutil.Error:
            continue


async def post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection: (status, body)."""
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    status_line, *headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), None)
    if length is not None:
        return int(status_line.split()[1]), await reader.readexactly(length)
    if not any(h.lower().replace(" ", "") == "transfer-encoding:chunked" for h in headers):
        raise SystemExit(f"response without Content-Length or chunks: {status_line}")
    body = b""  # Ray Serve's proxy answers in chunks
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return int(status_line.split()[1]), body
        body += chunk[:-2]


async def load(url: str, texts: list[str], clients: int, duration: float) -> dict[str, Any]:
    """`clients` loops sending one text per request for `duration` seconds, each over its
    own kept-alive connection. The requests are written by hand on asyncio streams: the
    generator shares the two cores with the server under test, and an httpx client per
    connection cost about 1.1 ms of CPU per request (0.3 cores at 250 req/s), taken from
    whichever server answered fastest; these cost about a quarter of that."""
    parsed = httpx.URL(url)
    head = (
        f"POST {parsed.raw_path.decode()} HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    bodies = [json.dumps({"inputs": [text]}).encode() for text in texts]
    latencies: list[float] = []
    errors = 0

    async def one(worker: int) -> None:
        nonlocal errors
        i = worker
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        try:
            end = time.perf_counter() + duration
            while time.perf_counter() < end:
                start = time.perf_counter()
                status, _ = await post(reader, writer, head, bodies[i % len(bodies)])
                if status == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
                i += clients
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(clients)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
        if latencies
        else None,
    }


def train(ws: Any, method: str, name: str) -> str:
    spec = {
        "name": name,
        "model": "minilm",
        "method": {"type": "lora", "r": 8, "target_modules": ["query", "value"]}
        if method == "lora"
        else "full",
        "data": {"train": "demo-train", "test": "demo-test"},
        "inputs": [{"name": "text", "max_length": 64}],
        "outputs": [{"name": "category"}],
        "train": {"epochs": 1, "batch_size": 32, "seed": 42},
    }
    outcome = ws.train(spec)
    print(f"trained {outcome.model.ref}: accuracy {outcome.metrics['accuracy']:.3f}", flush=True)
    return str(outcome.model.ref)


def onnx_forward_cpu(graph: Path, folder: Path, texts: list[str], batch: int, seconds: float) -> float:
    """CPU seconds per request of the bare ONNX Runtime forward pass (one thread, the graph
    the servers run) over batches of `batch` of the benchmark's texts, padded per batch:
    what a server would spend if nothing but the model cost anything."""
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    config = json.loads((folder / "llmos_model.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    feeds = []
    for i in range(0, len(texts) - batch + 1, batch):
        enc = tokenizer(
            texts[i : i + batch],
            truncation=True,
            max_length=config["input"]["max_length"],
            padding=True,
            return_tensors="np",
        )
        feeds.append({k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")})
    session.run(None, feeds[0])  # warm up
    requests, began, end = 0, time.process_time(), time.perf_counter() + seconds
    while time.perf_counter() < end:
        for feed in feeds:
            session.run(None, feed)
            requests += batch
    return (time.process_time() - began) / requests


def batch_totals(url: str) -> tuple[float, float]:
    """(inputs, batches) a llmos server has run so far, from its `llmos_batch_inputs` histogram."""
    found = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        for key in ("llmos_batch_inputs_sum", "llmos_batch_inputs_count"):
            if line.startswith(key + " "):
                found[key] = float(line.split()[1])
    return found.get("llmos_batch_inputs_sum", 0.0), found.get("llmos_batch_inputs_count", 0.0)


def throughput(
    ws: Any,
    home: Path,
    texts: list[str],
    levels: list[int],
    duration: float,
    workers: int,
    servers_wanted: list[str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from llmos.models.onnx import graph_path

    ref = train(ws, "full", "clf")
    ws.deploy(ref, "clf")  # no flag: the default
    ws.deploy(ref, "clf-torch", optimize="torch")
    ws.deploy(ref, "clf-int8", optimize="int8")
    folder = ws.model_path(ref)
    labels = len(json.loads((folder / "llmos_model.json").read_text())["output"]["labels"])
    (home / "plain_server.py").write_text(textwrap.dedent(PLAIN_SERVER))
    (home / "ray_server.py").write_text(textwrap.dedent(RAY_SERVER))
    plain_argv = [str(folder / "encoder"), str(folder / "tokenizer"), str(labels)]
    plain = f"import sys, uvicorn; sys.argv[1:] = {plain_argv!r}; sys.path.insert(0, {str(home)!r}); "
    plain += "import plain_server; uvicorn.run(plain_server.app, port=8932, log_level='warning')"
    graph = graph_path(folder)  # written by the default deployment's first load
    ray_cmd = [sys.executable, str(home / "ray_server.py"), str(graph), str(folder / "tokenizer")]
    ray_cmd += [str(folder / "llmos_model.json"), "8936", str(workers), "64"]
    rows = []
    batching = ["--max-batch", "64", "--max-wait-ms", "2", "--max-queue", "1024", "--workers", str(workers)]
    servers = {
        "llmos": (llmos_serve(home, 8931, *batching), "http://127.0.0.1:8931", "/v1/deployments/clf/predict"),
        "llmos-torch": (
            llmos_serve(home, 8935, *batching),
            "http://127.0.0.1:8935",
            "/v1/deployments/clf-torch/predict",
        ),
        "llmos-int8": (
            llmos_serve(home, 8934, *batching),
            "http://127.0.0.1:8934",
            "/v1/deployments/clf-int8/predict",
        ),
        "ray-serve": (ray_cmd, "http://127.0.0.1:8936", "/predict"),
        "plain": ([sys.executable, "-c", plain], "http://127.0.0.1:8932", "/predict"),
    }
    batches: dict[str, Any] = {}
    for name in ["llmos", *(n for n in servers if n != "llmos")]:  # llmos first: it exports the graph
        if name not in servers_wanted:
            continue
        cmd, url, route = servers[name]
        proc = start(cmd, url, route)
        try:
            asyncio.run(load(url + route, texts, 4, 2.0))  # warm up
            for clients in levels:
                before = batch_totals(url) if name == "llmos" else (0.0, 0.0)
                cpu = tree_cpu_s(proc)
                result = asyncio.run(load(url + route, texts, clients, duration))
                cpu = tree_cpu_s(proc) - cpu
                result["server_cpu_ms_per_request"] = round(1000 * cpu / max(result["requests"], 1), 3)
                if name == "llmos":
                    after = batch_totals(url)
                    ran = after[1] - before[1]
                    batches[str(clients)] = (after[0] - before[0]) / ran if ran else None
                rows.append({"server": name, **result})
                print(
                    f"{name:11} {clients:3} clients: {result['requests_per_s']:7.1f} req/s  "
                    f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                    f"CPU {result['server_cpu_ms_per_request']} ms/request  errors {result['errors']}",
                    flush=True,
                )
        finally:
            stop(proc)
    bare: dict[str, Any] = {}
    for clients, batch in batches.items():
        if batch is None:
            continue
        size = max(1, round(batch))
        cpu = onnx_forward_cpu(graph, folder, texts, size, min(duration, 5.0))
        bare[clients] = {"mean_batch": round(batch, 2), "bare_onnx_cpu_ms_per_request": round(1000 * cpu, 3)}
    return rows, bare


def perturbed_copy(ws: Any, source: Path, name: str, seed: int, redraw: Any = None) -> str:
    """Register a copy of LoRA model folder `source` whose adapter and head weights are
    redrawn by `redraw(tensor, generator)` (default: 1% noise added)."""
    import torch
    from safetensors.torch import load_file, save_file

    from llmos.store.models import register_model

    if redraw is None:
        redraw = lambda v, gen: v + 0.01 * torch.randn(v.shape, generator=gen)  # noqa: E731
    folder = Path(tempfile.mkdtemp()) / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("report"))
    gen = torch.Generator().manual_seed(seed)
    for path in [*(folder / "adapter").glob("*.safetensors"), folder / "head.safetensors"]:
        tensors = load_file(str(path))
        save_file({k: redraw(v, gen) for k, v in tensors.items()}, str(path))
    base = ws.model("lora0")
    row = register_model(
        ws.store,
        name=name,
        task=base.task,
        base_model=base.base_model,
        method=base.method,
        spec=base.spec,
        folder=folder,
        train_dataset_id=base.train_dataset_id,
        test_dataset_id=base.test_dataset_id,
        split=base.split,
        metrics={},
        train_seconds=0.0,
    )
    shutil.rmtree(folder.parent)
    return str(row.ref)


def rss(url: str) -> int:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return int(float(line.split()[1]))
    raise SystemExit("no process_resident_memory_bytes in /metrics")


def memory(ws: Any, home: Path, adapters: int) -> dict[str, Any]:
    first = train(ws, "lora", "lora0")
    source = ws.model_path(first)
    refs = [first] + [perturbed_copy(ws, source, f"lora{i}", i) for i in range(1, adapters)]
    for i, ref in enumerate(refs):
        ws.deploy(ref, f"m{i}")
    url = "http://127.0.0.1:8933"
    cmd = llmos_serve(home, 8933, "--max-adapters", str(adapters + 10), "--adapter-budget-mb", "2048")
    proc = start(cmd, url)
    text = {"inputs": ["my card has not arrived yet"]}
    try:
        client = httpx.Client(timeout=120)
        started = time.perf_counter()
        client.post(f"{url}/v1/deployments/m0/predict", json=text).raise_for_status()
        first_load = time.perf_counter() - started
        one_rss, one = rss(url), client.get(f"{url}/healthz").json()
        cold = []
        for i in range(1, adapters):
            started = time.perf_counter()
            client.post(f"{url}/v1/deployments/m{i}/predict", json=text).raise_for_status()
            cold.append(time.perf_counter() - started)
        warm = []
        for i in range(adapters):
            started = time.perf_counter()
            client.post(f"{url}/v1/deployments/m{i}/predict", json=text).raise_for_status()
            warm.append(time.perf_counter() - started)
        all_rss, full = rss(url), client.get(f"{url}/healthz").json()
    finally:
        stop(proc)
    one_model = one["model_bytes"] + one["adapter_bytes"]
    return {
        "deployments": adapters,
        "rss_one_deployment_mb": round(one_rss / 2**20, 1),
        "rss_all_deployments_mb": round(all_rss / 2**20, 1),
        "rss_ratio": round(all_rss / one_rss, 3),
        "model_bytes_one_mb": round(one_model / 2**20, 2),
        "model_and_adapter_bytes_all_mb": round((full["model_bytes"] + full["adapter_bytes"]) / 2**20, 2),
        "weights_ratio": round((full["model_bytes"] + full["adapter_bytes"]) / one_model, 3),
        "separate_copies_mb": round(adapters * one_model / 2**20, 1),
        "adapters_resident": full["adapters"],
        "first_request_with_base_load_ms": round(1000 * first_load, 1),
        "cold_adapter_first_request_ms": {
            "p50": round(1000 * statistics.median(cold), 1),
            "p90": round(1000 * sorted(cold)[int(0.9 * len(cold))], 1),
        },
        "warm_request_ms": {"p50": round(1000 * statistics.median(warm), 1)},
    }


def print_memory(m: dict[str, Any]) -> None:
    cold = m["cold_adapter_first_request_ms"]
    print(
        f"\n{m['deployments']} LoRA deployments: RSS {m['rss_one_deployment_mb']} MB with one answering, "
        f"{m['rss_all_deployments_mb']} MB with all ({m['rss_ratio']}x); weights {m['model_bytes_one_mb']} MB"
        f" -> {m['model_and_adapter_bytes_all_mb']} MB ({m['weights_ratio']}x)"
        f" vs {m['separate_copies_mb']} MB"
        f" for separate copies; cold adapter first request p50 {cold['p50']} ms, p90 {cold['p90']} ms, "
        f"warm {m['warm_request_ms']['p50']} ms"
    )


def compare(rows: list[dict[str, Any]], bare: dict[str, Any], levels: list[int]) -> list[dict[str, Any]]:
    """Each server beside plain and beside Ray Serve at each level, printed as a table;
    llmos's CPU per request beside the bare ONNX forward pass of its mean batch."""
    print(
        "\nserver      | clients | req/s | vs plain | vs ray-serve | p50 ms | p99 ms | p99 vs ray"
        " | CPU ms/req | vs bare ONNX | cores used | req per CPU s"
    )
    comparison = []
    for clients in levels:
        at = {r["server"]: r for r in rows if r["clients"] == clients}
        plain, ray = at["plain"], at.get("ray-serve")
        for name, a in at.items():
            entry: dict[str, Any] = {
                "server": name,
                "clients": clients,
                "throughput_x": round(a["requests_per_s"] / plain["requests_per_s"], 2),
                "p99_ratio": round(a["p99_ms"] / plain["p99_ms"], 3),
            }
            if ray is not None:
                entry["throughput_vs_ray_x"] = round(a["requests_per_s"] / ray["requests_per_s"], 2)
                entry["p99_vs_ray"] = round(a["p99_ms"] / ray["p99_ms"], 3)
            # under load the servers get unequal shares of the CPU (Ray runs a dozen
            # processes, llmos one): requests per CPU second compares them at equal CPU
            cpu_ms = a["server_cpu_ms_per_request"]
            entry["server_cores"] = round(a["requests_per_s"] * cpu_ms / 1000, 2)
            entry["requests_per_cpu_s"] = round(1000 / cpu_ms, 1) if cpu_ms else None
            floor = bare.get(str(clients))
            if floor is not None:
                entry["cpu_vs_bare_onnx_x"] = round(
                    a["server_cpu_ms_per_request"] / floor["bare_onnx_cpu_ms_per_request"], 2
                )
            comparison.append(entry)
            print(
                f"{name:11} | {clients:7} | {a['requests_per_s']:5} | {entry['throughput_x']:7}x | "
                f"{entry.get('throughput_vs_ray_x', '-'):11}x | {a['p50_ms']:6} | {a['p99_ms']:6} | "
                f"{entry.get('p99_vs_ray', '-'):10} | {a['server_cpu_ms_per_request']:10} | "
                f"{entry.get('cpu_vs_bare_onnx_x', '-')} | {entry['server_cores']} | "
                f"{entry['requests_per_cpu_s']}"
            )
    for clients, floor in bare.items():
        print(
            f"bare ONNX forward pass at {clients} clients (llmos mean batch {floor['mean_batch']}): "
            f"{floor['bare_onnx_cpu_ms_per_request']} ms CPU per request"
        )
    return comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per concurrency level")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--adapters", type=int, default=100, help="LoRA deployments for (b); 0 skips (b)")
    parser.add_argument(
        "--servers",
        default="llmos,llmos-torch,llmos-int8,ray-serve,plain",
        help="which servers to load (llmos is the default deployment; plain is always the reference)",
    )
    parser.add_argument(
        "--loaded", action="store_true", help="label the figures as taken while other work shared the CPU"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="llmos batch threads (one torch thread each); the plain server's thread pool runs "
        "as many requests at once as it has cores",
    )
    args = parser.parse_args()
    import pandas as pd
    import torch

    torch.set_num_threads(1)
    from llmos import Workspace

    home = Path(tempfile.mkdtemp(prefix="bench-serve-")) / "ws"
    ws = Workspace(home)
    ws.init()
    ws.import_dataset(DEMO / "banking_demo_train.csv", "demo-train")
    ws.import_dataset(DEMO / "banking_demo_test.csv", "demo-test")
    texts = pd.read_csv(DEMO / "banking_demo_test.csv")["text"].tolist()
    levels = [int(x) for x in args.levels.split(",")]
    wanted = sorted({*args.servers.split(","), "llmos", "plain"})
    rows, bare = throughput(ws, home, texts, levels, args.duration, args.workers, wanted)
    mem = memory(ws, home, args.adapters) if args.adapters else None
    kept = False
    if mem is None:  # keep the memory figures of the last full run
        previous = Path(__file__).resolve().parent / "results" / "bench_serve.json"
        if previous.exists():
            mem, kept = json.loads(previous.read_text()).get("memory"), True
    comparison = compare(rows, bare, levels)
    if mem is not None:
        print_memory(mem)
    note = "2-core CPU; the load generator runs on the same cores"
    if args.loaded:
        note += "; loaded: other work shared the CPU during the run"
    path = write_result(
        "bench_serve",
        {
            "machine": {**machine(), "note": note},
            "loaded": args.loaded,
            "duration_s": args.duration,
            "llmos_workers": args.workers,
            "throughput": rows,
            "bare_onnx_forward": bare,
            "comparison": comparison,
            "memory": mem,
            "memory_from_previous_run": kept,
        },
    )
    print(f"wrote {path}")
    shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
