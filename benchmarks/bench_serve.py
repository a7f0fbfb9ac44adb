"""Serving throughput and memory: `llmos serve` against a plain FastAPI server.

(a) Throughput. One MiniLM intent classifier (full fine-tuning, 1 epoch on the bundled
12-intent Banking77 demo set). At 1, 8, 32 and 64 concurrent clients, each client sends
one-text requests back to back for `--duration` seconds to
- llmos: `llmos serve` with the classifier deployed (requests batched per base model),
  as it is (torch), with `--optimize int8` and with `--optimize onnx` (ONNX Runtime, fp32);
- plain: a FastAPI app whose route calls a transformers `pipeline("text-classification")`
  per request, over the same fine-tuned MiniLM encoder weights (a
  `BertForSequenceClassification`: the same compute, its own head), as a simple server
  would. Both servers run in their own process with one torch thread per forward pass:
  FastAPI runs the plain route in its thread pool, so it runs one request per core at
  once; llmos runs `--workers` batch threads (default: one per core).
(b) Memory. 100 MiniLM-LoRA deployments (one LoRA model trained, 99 copies with
perturbed adapter and head weights, each registered and deployed) on one `llmos serve`:
resident memory after the first deployment has answered and after all 100 have, the
pager's own accounting, and the latency of each adapter's first (cold) request.

Prints both tables and writes `benchmarks/results/bench_serve.json`.

    python benchmarks/bench_serve.py                # about 7 minutes on two cores
    python benchmarks/bench_serve.py --duration 4 --levels 1,8 --adapters 0
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


def start(cmd: list[str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=SERVER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while True:
        try:
            httpx.get(url + "/docs", timeout=2)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise SystemExit(f"server did not start: {detail}") from None
            time.sleep(0.3)


def llmos_serve(home: Path, port: int, *options: str) -> list[str]:
    """The command line of `llmos serve` over `home` (tokens off: the load is anonymous)."""
    cmd = [sys.executable, "-m", "llmos.cli.main", "--home", str(home), "serve", "--insecure-no-auth"]
    return [*cmd, "--port", str(port), *options]


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a kept-alive connection: (status, body)."""
    writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    status_line, *headers = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), None)
    if length is None:
        raise SystemExit(f"response without Content-Length: {status_line}")
    return int(status_line.split()[1]), await reader.readexactly(length)


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


def throughput(
    ws: Any, home: Path, texts: list[str], levels: list[int], duration: float, workers: int
) -> list[dict[str, Any]]:
    ref = train(ws, "full", "clf")
    ws.deploy(ref, "clf")
    ws.deploy(ref, "clf-int8", optimize="int8")
    ws.deploy(ref, "clf-onnx", optimize="onnx")
    folder = ws.model_path(ref)
    labels = len(json.loads((folder / "llmos_model.json").read_text())["output"]["labels"])
    (home / "plain_server.py").write_text(textwrap.dedent(PLAIN_SERVER))
    plain_argv = [str(folder / "encoder"), str(folder / "tokenizer"), str(labels)]
    plain = f"import sys, uvicorn; sys.argv[1:] = {plain_argv!r}; sys.path.insert(0, {str(home)!r}); "
    plain += "import plain_server; uvicorn.run(plain_server.app, port=8932, log_level='warning')"
    rows = []
    batching = ["--max-batch", "64", "--max-wait-ms", "2", "--max-queue", "1024", "--workers", str(workers)]
    servers = {
        "llmos": (llmos_serve(home, 8931, *batching), "http://127.0.0.1:8931", "/v1/deployments/clf/predict"),
        "llmos-int8": (
            llmos_serve(home, 8934, *batching),
            "http://127.0.0.1:8934",
            "/v1/deployments/clf-int8/predict",
        ),
        "llmos-onnx": (
            llmos_serve(home, 8935, *batching),
            "http://127.0.0.1:8935",
            "/v1/deployments/clf-onnx/predict",
        ),
        "plain": ([sys.executable, "-c", plain], "http://127.0.0.1:8932", "/predict"),
    }
    for name, (cmd, url, route) in servers.items():
        proc = start(cmd, url)
        try:
            asyncio.run(load(url + route, texts, 4, 2.0))  # warm up (loads the model)
            for clients in levels:
                result = asyncio.run(load(url + route, texts, clients, duration))
                rows.append({"server": name, **result})
                print(
                    f"{name:10} {clients:3} clients: {result['requests_per_s']:7.1f} req/s  "
                    f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  errors {result['errors']}",
                    flush=True,
                )
        finally:
            stop(proc)
    return rows


def perturbed_copy(ws: Any, source: Path, name: str, seed: int) -> str:
    import torch
    from safetensors.torch import load_file, save_file

    from llmos.store.models import register_model

    folder = Path(tempfile.mkdtemp()) / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("report"))
    gen = torch.Generator().manual_seed(seed)
    for path in [*(folder / "adapter").glob("*.safetensors"), folder / "head.safetensors"]:
        tensors = load_file(str(path))
        save_file({k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in tensors.items()}, str(path))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per concurrency level")
    parser.add_argument("--levels", default="1,8,32,64")
    parser.add_argument("--adapters", type=int, default=100, help="LoRA deployments for (b); 0 skips (b)")
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
    rows = throughput(ws, home, texts, levels, args.duration, args.workers)
    mem = memory(ws, home, args.adapters) if args.adapters else None
    print("\nserver     | clients | req/s | vs plain | p50 ms | p99 ms | p99 vs plain")
    comparison = []
    for clients in levels:
        b = next(r for r in rows if r["server"] == "plain" and r["clients"] == clients)
        for a in (r for r in rows if r["clients"] == clients):
            speedup = round(a["requests_per_s"] / b["requests_per_s"], 2)
            p99 = round(a["p99_ms"] / b["p99_ms"], 3)
            comparison.append(
                {"server": a["server"], "clients": clients, "throughput_x": speedup, "p99_ratio": p99}
            )
            print(
                f"{a['server']:10} | {clients:7} | {a['requests_per_s']:5} | {speedup:7}x | "
                f"{a['p50_ms']:6} | {a['p99_ms']:6} | {p99}"
            )
    if mem is not None:
        print_memory(mem)
    path = write_result(
        "bench_serve",
        {
            "machine": {**machine(), "note": "2-core CPU; the load generator runs on the same cores"},
            "duration_s": args.duration,
            "llmos_workers": args.workers,
            "throughput": rows,
            "comparison": comparison,
            "memory": mem,
        },
    )
    print(f"wrote {path}")
    shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
