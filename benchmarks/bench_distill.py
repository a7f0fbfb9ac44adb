"""Distillation: SmolLM2-135M-Instruct few-shot as the teacher, MiniLM + LoRA as the student,
on 10 Banking77 intents with 50 labels and the rest of those intents' training rows
unlabelled; against the teacher itself and MiniLM + LoRA fine-tuned on the 50 labels alone.

Arms, all through `Workspace.train` as a user's specs would be, scored on the same test
rows of the 10 intents:
- teacher: `method: {type: few-shot, k: 4}` on SmolLM2 with the 50 labelled rows as its
  example pool (the label's log-likelihood after one prompt per text);
- labels only: MiniLM + LoRA on the 50 labelled rows;
- distilled: the same student with `distill: {teacher, unlabelled}` (the teacher's
  probabilities on the unlabelled rows, the 50 labels on theirs).
Speed per prediction: one text per call through `Workspace.predict` (p50 over
`--latency-texts` test texts), teacher and student in the same process.

The 10 intents of `llm_zero_shot.py` have 1,149 training rows; with 50 labelled, 1,099
are left unlabelled (Banking77 has no 2,000 rows for 10 intents outside its test set).
The workspace is kept in `--home` (default a folder under the system temp dir) so a
rerun reuses the registered teacher and its cached answers.

    python benchmarks/bench_distill.py                   # 40 test rows per intent
    python benchmarks/bench_distill.py --test-per-intent 20
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import banking77, machine, minilm_path, write_result
from llm_zero_shot import INTENTS


def latency_ms(ws: Any, ref: str, texts: list[str]) -> float:
    ws.predict(ref, texts[:1])  # loaded once, as a server keeps it
    times = []
    for text in texts:
        began = time.perf_counter()
        ws.predict(ref, [text])
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=50, help="labelled rows (5 per intent)")
    parser.add_argument("--test-per-intent", type=int, default=40)
    parser.add_argument("--unlabelled", type=int, default=None, help="the first N unlabelled rows only")
    parser.add_argument("--latency-texts", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--home", default=str(Path(tempfile.gettempdir()) / "llmos-bench-distill"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from llmos import Workspace

    train, test = banking77()
    train = train[train["category"].isin(INTENTS)].reset_index(drop=True)
    test = test[test["category"].isin(INTENTS)]
    test = test.groupby("category").head(args.test_per_intent).reset_index(drop=True)
    labelled = train.groupby("category").sample(n=args.labels // len(INTENTS), random_state=0)
    unlabelled = train.drop(labelled.index)[["text"]].sample(frac=1.0, random_state=0)
    unlabelled = unlabelled.head(args.unlabelled) if args.unlabelled else unlabelled
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    ws = Workspace(home / "ws")
    names = {d.name for d in ws.datasets()}
    if "b77-unlabelled" in names and ws.dataset("b77-unlabelled").num_rows != len(unlabelled):
        names.discard("b77-unlabelled")  # another --unlabelled: a new version, its first blocks cached
    for name, frame in (("b77-labelled", labelled), ("b77-unlabelled", unlabelled), ("b77-test", test)):
        if name not in names:
            frame.to_csv(home / f"{name}.csv", index=False)
            ws.import_dataset(home / f"{name}.csv", name)
    print(f"{len(labelled)} labelled, {len(unlabelled)} unlabelled, {len(test)} test rows", flush=True)

    def spec(name: str, model: str, method: Any, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "model": model,
            "method": method,
            "data": {"train": "b77-labelled", "test": "b77-test"},
            "inputs": [{"name": "text", "max_length": 64}],
            "outputs": [{"name": "category"}],
            "train": {"epochs": args.epochs, "batch_size": 16, "seed": 0},
            **extra,
        }

    results: dict[str, dict[str, Any]] = {}
    models = {m.name for m in ws.models()}

    def run(arm: str, body: dict[str, Any], reuse: bool = False) -> None:
        began = time.perf_counter()
        if reuse and body["name"] in models:  # a rerun: the registered teacher (and its cached answers)
            metrics = ws.model(body["name"]).metrics
        else:
            metrics = ws.train(body).metrics
        results[arm] = {
            "model": body["name"],
            "teacher_eval_seconds": metrics.get("eval_seconds"),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "seconds": round(time.perf_counter() - began, 1),
            **({"distill": metrics["distill"]} if "distill" in metrics else {}),
        }
        print(
            f"{arm}: accuracy {100 * metrics['accuracy']:.2f}% ({results[arm]['seconds']:.0f}s)", flush=True
        )

    run("teacher", spec("b77-teacher", "smollm2-135m", {"type": "few-shot", "k": 4}), reuse=True)
    run("labels only", spec("b77-labels-only", minilm_path(), "lora"))
    distill = {"teacher": "b77-teacher", "unlabelled": "b77-unlabelled"}
    run("distilled", spec("b77-distilled", minilm_path(), "lora", distill=distill))

    texts = test["text"].tolist()[: args.latency_texts]
    for arm in results:
        results[arm]["p50_ms"] = round(latency_ms(ws, results[arm]["model"], texts), 2)
    speedup = results["teacher"]["p50_ms"] / results["distilled"]["p50_ms"]
    load = round(os.getloadavg()[0], 2)
    print(f"\n{'arm':<12} {'model':<34} {'accuracy':>9} {'macro F1':>9} {'p50 ms':>9} {'seconds':>8}")
    described = {
        "teacher": "SmolLM2-135M few-shot (k 4)",
        "labels only": "MiniLM + LoRA, 50 labels",
        "distilled": "MiniLM + LoRA, distilled",
    }
    for arm, r in results.items():
        print(
            f"{arm:<12} {described[arm]:<34} {100 * r['accuracy']:>8.2f}% {100 * r['macro_f1']:>8.2f}% "
            f"{r['p50_ms']:>9.1f} {r['seconds']:>8.0f}"
        )
    print(f"student {speedup:.1f}x faster per prediction than the teacher (load average {load})")
    path = write_result(
        "bench_distill",
        {
            "intents": INTENTS,
            "labelled_rows": len(labelled),
            "unlabelled_rows": len(unlabelled),
            "test_rows": len(test),
            "epochs": args.epochs,
            "results": results,
            "speedup_p50": round(speedup, 1),
            "machine": machine(),
            # the machine is shared: figures taken with other work running are "loaded"
            "load_average_1m": load,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
