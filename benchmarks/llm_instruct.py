"""Instruction tuning of SmolLM2-135M-Instruct with LoRA on the bundled customer-service
conversations (`examples/data/banking_support.jsonl`, 300 pairs), through the example
spec `examples/support_chat_lora.yaml` exactly as `llmos train` runs it.

Reports training time, held-out perplexity before and after, exact match and ROUGE-L of
the generated answers, and sample answers before/after; writes
`benchmarks/results/llm_instruct.json`.

    python benchmarks/llm_instruct.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine, write_result


def main() -> None:
    from llmos import Workspace
    from llmos.cli.output import RichProgress
    from llmos.spec import load_spec

    spec = load_spec(ROOT / "examples" / "support_chat_lora.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.import_dataset(ROOT / "examples" / "data" / "banking_support.jsonl", name="support")
        ws.llm("smollm2-135m")  # the zoo's one-time GGUF conversion is not training time
        started = time.perf_counter()
        with RichProgress() as progress:
            outcome = ws.train(spec, progress)
        total = time.perf_counter() - started
    m = outcome.metrics
    before = m["before"]
    print(f"held-out perplexity {before['perplexity']:.3f} before, {m['perplexity']:.3f} after training")
    print(f"after: exact match {100 * m['exact_match']:.1f}%, ROUGE-L {m['rouge_l']:.3f}")
    print(f"training {m['train_seconds']:.0f}s; train + evaluation {total:.0f}s")
    for sample in m["samples"][:3]:
        print(f"\nQ: {sample['prompt']}\nbefore: {sample['before']}\nafter:  {sample['after']}")
    result = {
        "spec": spec.model_dump(mode="json"),
        "machine": machine(),
        "train_seconds": m["train_seconds"],
        "total_seconds": round(total, 1),
        "before": before,
        "after": {k: m[k] for k in ("loss", "perplexity", "exact_match", "rouge_l", "num_examples")},
        "history": outcome.history,
        "samples": m["samples"],
    }
    print(f"wrote {write_result('llm_instruct', result)}")


if __name__ == "__main__":
    main()
