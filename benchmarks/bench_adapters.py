"""Many adapters in one batch: 100 LoRA deployments over one MiniLM base against one whole model.

Both run on `llmos serve` with the same batching options. The whole model is a MiniLM
intent classifier (full fine-tuning) deployed alone; the adapters are 100 MiniLM-LoRA
deployments (one trained briefly, 99 copies with redrawn adapter and head weights, each
registered and deployed) over one shared base. 32 clients send one-text requests back
to back for `--duration` seconds; client w's j-th request goes to deployment
(w + 32 j) mod 100, so every window of requests spreads over many adapters. Every
answer is checked against that deployment's offline prediction (`Predictor.from_folder`
on its own folder, one model at a time): same label, probabilities within 1e-4.

The server runs LoRA adapters of one base in shared forward passes (`serve/mixed.py`);
`--per-adapter` also measures the previous way (one pass per adapter in the window) by
starting the server with LLMOS_MIXED_ADAPTERS=0.

Prints a table and writes `benchmarks/results/bench_adapters.json`.

    python benchmarks/bench_adapters.py                 # about 6 minutes on two cores
    python benchmarks/bench_adapters.py --adapters 20 --duration 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from bench_serve import SERVER_ENV, llmos_serve, perturbed_copy, post, stop
from common import machine, write_result

DEMO = Path(__file__).resolve().parents[1] / "src" / "llmos" / "demo"
TRAIN_ROWS = 256  # about, every label kept: throughput does not depend on accuracy


def start(cmd: list[str], url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


def variant(ws: Any, source: Path, name: str, seed: int) -> str:
    """Register a copy of LoRA model folder `source` with redrawn adapter and head weights
    (5% of each tensor's spread, plus 0.02 absolute): far enough apart that the adapters'
    answers differ."""
    import torch

    def redraw(v: Any, gen: Any) -> Any:
        v = v + 0.05 * v.std() * torch.randn(v.shape, generator=gen)
        return v + 0.02 * torch.randn(v.shape, generator=gen)

    return perturbed_copy(ws, source, name, seed, redraw)


def offline(ws: Any, ref: str, texts: list[str]) -> list[dict[str, Any]]:
    from llmos.train.predict import Predictor

    return Predictor.from_folder(ws.model_path(ref), ws.settings.artifacts_dir).predict(texts)


async def load(
    url: str,
    names: list[str],
    texts: list[str],
    expected: dict[str, list[dict[str, Any]]],
    clients: int,
    duration: float,
) -> dict[str, Any]:
    """`clients` loops of one-text requests over kept-alive connections; client w's j-th
    request asks deployment names[(w + clients j) mod len(names)] about texts[j mod len]."""
    parsed = httpx.URL(url)
    heads = {
        n: (
            f"POST /v1/deployments/{n}/predict HTTP/1.1\r\nHost: {parsed.host}:{parsed.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        for n in names
    }
    bodies = [json.dumps({"inputs": [t]}).encode() for t in texts]
    latencies: list[float] = []
    errors = wrong = 0
    answers: list[tuple[str, int, bytes]] = []

    async def one(worker: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
        j = 0
        try:
            end = time.perf_counter() + duration
            while time.perf_counter() < end:
                name = names[(worker + clients * j) % len(names)]
                t = (worker + j) % len(texts)
                began = time.perf_counter()
                status, body = await post(reader, writer, heads[name], bodies[t])
                if status == 200:
                    latencies.append(time.perf_counter() - began)
                    answers.append((name, t, body))
                else:
                    errors += 1
                j += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(one(w) for w in range(clients)))
    elapsed = time.perf_counter() - began
    for name, t, body in answers:  # checked after the clock stops
        got = json.loads(body)["predictions"][0]
        want = expected[name][t]
        same = got["label"] == want["label"] and all(
            abs(got["probabilities"][k] - p) <= 1e-4 for k, p in want["probabilities"].items()
        )
        wrong += not same
    latencies.sort()
    return {
        "clients": clients,
        "deployments": len(names),
        "requests": len(latencies),
        "errors": errors,
        "wrong_answers": wrong,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)
        if latencies
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=100)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured round")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds per server, interleaved (the best counts)"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="llmos batch threads")
    parser.add_argument("--texts", type=int, default=8, help="distinct texts the clients send")
    parser.add_argument("--per-adapter", action="store_true", help="also measure one pass per adapter")
    parser.add_argument(
        "--loaded", action="store_true", help="label the figures as taken on a loaded machine"
    )
    args = parser.parse_args()
    import pandas as pd
    import torch

    torch.set_num_threads(1)
    from llmos import Workspace

    root = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    home = root / "ws"
    ws = Workspace(home)
    ws.init()
    train_rows = pd.read_csv(DEMO / "banking_demo_train.csv")
    per_label = max(1, TRAIN_ROWS // train_rows["category"].nunique())
    train_rows.groupby("category").head(per_label).to_csv(root / "train.csv", index=False)
    ws.import_dataset(root / "train.csv", "demo-train")
    ws.import_dataset(DEMO / "banking_demo_test.csv", "demo-test")
    texts = pd.read_csv(DEMO / "banking_demo_test.csv")["text"].tolist()[: args.texts]

    whole = train(ws, "full", "clf")
    ws.deploy(whole, "whole")
    first = train(ws, "lora", "lora0")
    source = ws.model_path(first)
    refs = [first] + [variant(ws, source, f"lora{i}", i) for i in range(1, args.adapters)]
    names = [f"m{i}" for i in range(args.adapters)]
    for name, ref in zip(names, refs):
        ws.deploy(ref, name)
    started = time.perf_counter()
    expected = {name: offline(ws, ref, texts) for name, ref in zip(names, refs)}
    expected["whole"] = offline(ws, whole, texts)
    print(
        f"offline predictions of {len(expected)} models in {time.perf_counter() - started:.0f} s", flush=True
    )
    labels = {tuple(r["label"] for r in rows) for n, rows in expected.items() if n != "whole"}
    probs = {tuple(round(r["score"], 6) for r in rows) for n, rows in expected.items() if n != "whole"}
    print(f"the adapters give {len(labels)} distinct label sequences, {len(probs)} distinct score sequences")

    options = [
        "--max-batch",
        "64",
        "--max-wait-ms",
        "2",
        "--max-queue",
        "1024",
        "--workers",
        str(args.workers),
    ]
    options += ["--max-adapters", str(args.adapters + 10), "--adapter-budget-mb", "2048"]
    servers: dict[str, tuple[list[str], dict[str, str]]] = {
        "whole model": (["whole"], {}),
        f"{args.adapters} adapters": (names, {}),
    }
    if args.per_adapter:
        servers[f"{args.adapters} adapters, per adapter"] = (names, {"LLMOS_MIXED_ADAPTERS": "0"})
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
    port = 8951
    for round_ in range(args.rounds):
        for label, (targets, env) in servers.items():
            url = f"http://127.0.0.1:{port}"
            proc = start(llmos_serve(home, port, *options), url, {**SERVER_ENV, **env})
            try:  # warm up: every deployment loaded and answering
                asyncio.run(load(url, targets, texts, expected, args.clients, 1.0))
                for name in targets:
                    httpx.post(
                        f"{url}/v1/deployments/{name}/predict", json={"inputs": texts[:1]}, timeout=120
                    )
                result = asyncio.run(load(url, targets, texts, expected, args.clients, args.duration))
            finally:
                stop(proc)
            port += 1
            rows[label].append(result)
            print(
                f"round {round_ + 1} {label:28} {result['requests_per_s']:7.1f} req/s  "
                f"p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                f"errors {result['errors']}  wrong {result['wrong_answers']}",
                flush=True,
            )
    best = {k: max(v, key=lambda r: r["requests_per_s"]) for k, v in rows.items()}
    base = best["whole model"]["requests_per_s"]
    condition = "loaded (shared machine)" if args.loaded else "quiet"
    print(
        f"\nfigures: {condition}; best of {args.rounds} rounds of {args.duration:g} s, {args.clients} clients"
    )
    print("server                         | req/s | vs whole | p50 ms | p99 ms | answers checked | wrong")
    table = []
    for label, r in best.items():
        ratio = round(r["requests_per_s"] / base, 3)
        table.append({"server": label, "throughput_x_whole": ratio, **r})
        print(
            f"{label:30} | {r['requests_per_s']:5} | {ratio:7}x | {r['p50_ms']:6} | {r['p99_ms']:6} | "
            f"{r['requests']:15} | {r['wrong_answers']}"
        )
    path = write_result(
        "bench_adapters",
        {
            "machine": machine(),
            "conditions": condition,
            "adapters": args.adapters,
            "clients": args.clients,
            "workers": args.workers,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "table": table,
            "rounds_raw": rows,
        },
    )
    print(f"wrote {path}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
