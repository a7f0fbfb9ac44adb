"""Generation throughput: llmos's batching engine vs plain `model.generate` per request.

The same SmolLM2-135M-Instruct, the same prompts (through the same chat template), greedy
decoding, the same token limit. At concurrency C, C client threads each send requests
until all N are answered:
- plain: each thread calls `model.generate` for its request, as a simple server would;
- llmos: each thread submits to `GenerationEngine`, which decodes concurrent requests
  together (KV cache, finished rows leave the batch).
Prints generated tokens/s side by side and writes `benchmarks/results/bench_generate.json`.

    python benchmarks/bench_generate.py                  # concurrency 1 and 8, 16 requests
"""

from __future__ import annotations

import argparse
import os
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


def run_clients(
    concurrency: int, prompts: list[list[int]], answer: Callable[[list[int]], int]
) -> tuple[float, int]:
    """Wall time and generated tokens for `concurrency` threads answering all prompts."""
    queue = list(range(len(prompts)))
    lock = threading.Lock()
    tokens = [0]

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop(0)
            n = answer(prompts[i])
            with lock:
                tokens[0] += n

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, tokens[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    import torch

    from llmos import Workspace
    from llmos.models.generation import SamplingParams

    with tempfile.TemporaryDirectory() as tmp:
        llm = Workspace(Path(tmp) / "ws").llm("smollm2-135m")
    prompts = [
        llm.format.prompt_ids([{"role": "user", "content": q}])
        for q in (QUESTIONS * (args.requests // len(QUESTIONS) + 1))[: args.requests]
    ]
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    eos = sorted(llm.generator.eos)
    model = llm.generator.model

    def plain(prompt: list[int]) -> int:
        with torch.inference_mode():
            out = model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones((1, len(prompt)), dtype=torch.long),
                max_new_tokens=args.max_new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=llm.generator.pad_id,
            )
        new = out[0, len(prompt) :].tolist()
        return sum(1 for t in new if t not in eos)

    engine = llm.engine(max_batch=16, max_wait_ms=20)

    def batched(prompt: list[int]) -> int:
        return engine.submit(prompt, params).result().completion_tokens

    plain(prompts[0])  # warm-up (allocations, kernels) for both
    batched(prompts[0])
    rows: list[dict[str, Any]] = []
    for c in args.concurrency:
        p_secs, p_tokens = run_clients(c, prompts, plain)
        l_secs, l_tokens = run_clients(c, prompts, batched)
        row = {
            "concurrency": c,
            "plain_tokens_per_s": round(p_tokens / p_secs, 1),
            "llmos_tokens_per_s": round(l_tokens / l_secs, 1),
            "plain_seconds": round(p_secs, 2),
            "llmos_seconds": round(l_secs, 2),
            "plain_tokens": p_tokens,
            "llmos_tokens": l_tokens,
        }
        row["speedup"] = round(row["llmos_tokens_per_s"] / row["plain_tokens_per_s"], 2)
        rows.append(row)
        plain_rate, llmos_rate = row["plain_tokens_per_s"], row["llmos_tokens_per_s"]
        print(f"concurrency {c}: plain {plain_rate} tok/s, llmos {llmos_rate} tok/s ({row['speedup']}x)")
    engine.close()
    print(f"\n{'clients':>7} {'plain tok/s':>12} {'llmos tok/s':>12} {'speed-up':>9}")
    for r in rows:
        rates = f"{r['plain_tokens_per_s']:>12} {r['llmos_tokens_per_s']:>12}"
        print(f"{r['concurrency']:>7} {rates} {r['speedup']:>8}x")
    result = {
        "model": "smollm2-135m",
        "requests": args.requests,
        "max_new_tokens": args.max_new_tokens,
        "batches": engine.batches,
        "machine": machine(),
        "rows": rows,
    }
    print(f"wrote {write_result('bench_generate', result)}")


if __name__ == "__main__":
    main()
