"""Scaling and kernel overhead: 1 vs 2 Ray Train workers on the same job, against local
training with 1 and 2 torch threads, and the kernel's submit-to-start latency.

Part 1 trains MiniLM + LoRA for one epoch on a stratified Banking77 subset four ways, in
this order: local backend with 1 torch thread, local with 2 threads (what a user gets
without Ray), Ray Train with 1 worker x 1 cpu, Ray Train with 2 workers x 1 cpu (DDP over
gloo). It reports samples/s while training (from the run's own timer, so model loading and
Ray start-up are excluded; they are in the wall-time column), test accuracy and the
scaling efficiency of 2 Ray workers over 1 (samples/s ratio / 2). On a 2-core machine two
workers also compete with the Ray driver and with anything else running, so expect well
under 100%.

Part 2 measures the kernel itself with `probe` jobs (no model loading): a scheduler runs
in its own process like `llmos kernel start`; each probe is submitted after the previous
one finished, and the time from `submit()` returning to the job being admitted (state
running) and to its handler's first line is recorded. The cold case starts the kernel on
demand, as `llmos train --detach` does when none runs.

    python benchmarks/bench_scaling.py [--train-rows 1000] [--test-rows 500] [--probes 10]

Writes `benchmarks/results/bench_scaling.json`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import banking77, banking77_workspace, machine, stratified_subset, write_result


def training_runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    train, test = banking77()
    train = stratified_subset(train, args.train_rows, seed=0)
    test = stratified_subset(test, args.test_rows, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = banking77_workspace(Path(tmp), train, test)
        base = {
            "model": "minilm",
            "method": "lora",
            "data": {"train": "b77-train", "test": "b77-test"},
            "inputs": [{"name": "text", "max_length": 64}],
            "outputs": [{"name": "category"}],
            "train": {"epochs": args.epochs, "batch_size": 32, "seed": 42},
        }
        runs = [
            ("local, 1 thread", "local", 1, 1),
            ("local, 2 threads", "local", 1, 2),
            ("ray, 1 worker x 1 cpu", "ray", 1, 1),
            ("ray, 2 workers x 1 cpu", "ray", 2, 1),
        ]
        for label, backend, workers, threads in runs:
            torch.set_num_threads(threads)
            spec = {**base, "name": f"scale-{backend}-{workers}-{threads}"}
            if backend == "ray":
                spec["backend"] = {"type": "ray", "workers": workers, "cpus_per_worker": 1}
            started = time.perf_counter()
            outcome = ws.train(spec)
            wall = time.perf_counter() - started
            m = outcome.metrics
            row = {
                "run": label,
                "backend": backend,
                "workers": workers,
                "threads_per_worker": threads,
                "train_seconds": m["train_seconds"],
                "samples_per_second": m["train_samples_per_second"],
                "wall_seconds": round(wall, 1),
                "accuracy": m["accuracy"],
            }
            rows.append(row)
            print(
                f"{label:<24} {row['samples_per_second']:>8.1f} samples/s  acc {row['accuracy']:.4f}",
                flush=True,
            )
    try:
        import ray

        ray.shutdown()
    except ImportError:
        pass
    return rows


def kernel_latency(args: argparse.Namespace) -> dict[str, Any]:
    from llmos import Workspace
    from llmos.kernel import jobs
    from llmos.kernel.probe import PROBE_HANDLER
    from llmos.kernel.resources import Resources
    from llmos.kernel.scheduler import ensure_kernel

    def probe(ws: Workspace) -> tuple[float, float]:
        job = jobs.submit(
            ws.store, kind="probe", name="probe", handler=PROBE_HANDLER, payload={}, resources=Resources()
        )
        submitted = time.time()
        done = ws.wait_job(job.id, timeout=60, poll=0.02)
        assert done.state == "succeeded", done.error
        admitted = jobs.get_job(ws.store, job.id).started_at
        assert admitted is not None and done.created_at is not None
        admit_s = (admitted - done.created_at).total_seconds()  # both stamped by the store
        return admit_s, done.result["started"] - submitted

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.init()
        os.environ["LLMOS_KERNEL_IDLE_EXIT"] = "5"
        ensure_kernel(ws.settings)  # cold: the first probe waits for the kernel to start
        cold = probe(ws)
        warm = [probe(ws) for _ in range(args.probes)]
    admit = [w[0] for w in warm]
    handler = [w[1] for w in warm]
    return {
        "probes": args.probes,
        "cold_submit_to_handler_s": round(cold[1], 3),
        "submit_to_admitted_s": {"median": round(statistics.median(admit), 3), "max": round(max(admit), 3)},
        "submit_to_handler_s": {
            "median": round(statistics.median(handler), 3),
            "max": round(max(handler), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--skip-training", action="store_true", help="Only measure the kernel.")
    args = parser.parse_args()

    latency = kernel_latency(args)
    rows = [] if args.skip_training else training_runs(args)
    result: dict[str, Any] = {"machine": machine(), "args": vars(args), "kernel": latency, "training": rows}
    by_run = {r["run"]: r for r in rows}
    if rows:
        one, two = by_run["ray, 1 worker x 1 cpu"], by_run["ray, 2 workers x 1 cpu"]
        result["ray_scaling_efficiency"] = round(
            two["samples_per_second"] / (2 * one["samples_per_second"]), 3
        )
        print()
        print(f"{'run':<24} {'samples/s':>10} {'train s':>8} {'wall s':>7} {'accuracy':>9}")
        for r in rows:
            print(
                f"{r['run']:<24} {r['samples_per_second']:>10.1f} {r['train_seconds']:>8.1f} "
                f"{r['wall_seconds']:>7.1f} {100 * r['accuracy']:>8.2f}%"
            )
        print(f"Ray scaling efficiency, 2 workers vs 1: {100 * result['ray_scaling_efficiency']:.0f}%")
    k = latency
    print(
        f"kernel: submit -> admitted median {k['submit_to_admitted_s']['median']}s, "
        f"submit -> handler running median {k['submit_to_handler_s']['median']}s "
        f"(max {k['submit_to_handler_s']['max']}s); cold start {k['cold_submit_to_handler_s']}s"
    )
    print(f"wrote {write_result('bench_scaling', result)}")


if __name__ == "__main__":
    main()
