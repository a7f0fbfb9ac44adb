"""Hyper-parameter search on a Banking77 subset: `search:` with TPE vs llmos's defaults vs
random search, at equal compute per trial (the same epochs, rows and validation split) and
the same budget of trials for both searches, over 3 seeds.

Each arm trains MiniLM + LoRA on the same training rows (a validation split is cut from
them; the test set never chooses) and is scored on the test rows of the same intents:
- defaults: `llmos train` without `search:` (the method's default learning rates, r 8);
- tpe: `search:` with Optuna's TPE sampler (`startup_trials` random ones first);
- random: `search:` with `sampler: random`.
Both searches use `scheduler: fifo` so that every trial costs the same; TPE's first
`startup_trials` (3) are random with the same seed, so the two searches differ from the
fourth trial on. Prints each search's
trials and the summary table; writes `benchmarks/results/bench_search.json`.

    python benchmarks/bench_search.py            # 10 intents, 3 seeds, 5 trials a search
    python benchmarks/bench_search.py --quick    # 1 seed, 3 trials (a smoke run)
    python benchmarks/bench_search.py --seeds 1 2 --merge   # more seeds, added to the JSON's runs

A run on the shared machine takes about 40 minutes a seed (loaded); `--merge` keeps the
runs of other seeds already in the JSON (same settings), so seeds can run in turns.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, banking77, banking77_workspace, machine, minilm_path, write_result

SPACE = {
    "train.lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "train.head_lr": {"low": 1e-3, "high": 3e-2, "log": True},
    "method.r": {"choices": [4, 8, 16]},
}


def subset(intents: int, per_intent: int) -> tuple[Any, Any]:
    train, test = banking77()
    chosen = sorted(train["category"].unique())[:intents]
    train = train[train["category"].isin(chosen)]
    train = train.groupby("category").sample(n=per_intent, random_state=0)
    test = test[test["category"].isin(chosen)]
    return train.reset_index(drop=True), test.reset_index(drop=True)


def spec(seed: int, epochs: int, search: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "b77-search",
        "model": minilm_path(),
        "method": "lora",
        "data": {"train": "b77-train", "test": "b77-test", "split": {"validation": 0.2, "seed": seed}},
        "inputs": [{"name": "text", "max_length": 32}],
        "outputs": [{"name": "category"}],
        "train": {"epochs": epochs, "batch_size": 16, "seed": seed},
    }
    if search is not None:
        body["search"] = search
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--intents", type=int, default=10)
    parser.add_argument("--per-intent", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--merge", action="store_true", help="keep the JSON's runs of other seeds")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    trials = 3 if args.quick else args.trials
    kept: list[dict[str, Any]] = []
    if args.merge and (RESULTS / "bench_search.json").exists():
        old = json.loads((RESULTS / "bench_search.json").read_text())
        if old["trials_per_search"] != trials or old["epochs"] != args.epochs:
            raise SystemExit("--merge: the JSON was measured with other trials or epochs")
        kept = [r for r in old["runs"] if r["seed"] not in seeds]
    train, test = subset(args.intents, args.per_intent)
    runs: list[dict[str, Any]] = list(kept)
    seeds = sorted({r["seed"] for r in kept} | set(seeds))
    with tempfile.TemporaryDirectory() as tmp:
        ws = banking77_workspace(Path(tmp), train, test)
        for seed in args.seeds or seeds:
            for arm in ("defaults", "tpe", "random"):
                search = None
                if arm != "defaults":
                    search = {"space": SPACE, "trials": trials, "sampler": arm, "scheduler": "fifo"}
                started = time.perf_counter()
                outcome = ws.train(spec(seed, args.epochs, search))
                seconds = time.perf_counter() - started
                found = outcome.model.metrics.get("search")
                run = {
                    "arm": arm,
                    "seed": seed,
                    "accuracy": outcome.model.metrics["accuracy"],
                    "seconds": round(seconds, 1),
                    "trials": found["trials"] if found else None,
                    "best_params": found["best_params"] if found else None,
                }
                runs.append(run)
                report(args, trials, seeds, len(test), runs, complete=False)
                print(
                    f"seed {seed} {arm:8s} test accuracy {run['accuracy']:.4f} ({seconds:.0f}s)", flush=True
                )
                for t in (found or {}).get("trials", []):
                    values = ", ".join(
                        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items()
                    )
                    mark = " *" if t["trial"] == found["best_trial"] else ""
                    print(f"    trial {t['trial']}{mark}: {values}  val {t['score']}  {t['state']}")
    report(args, trials, seeds, len(test), runs, complete=True)


def report(
    args: Any, trials: int, seeds: list[int], test_rows: int, runs: list[dict[str, Any]], complete: bool
) -> None:
    """The summary (printed once complete) and the JSON, rewritten after every run so that
    a run cut short still leaves what it measured (`complete: false`)."""
    summary: dict[str, Any] = {}
    for arm in ("defaults", "tpe", "random"):
        accs = [r["accuracy"] for r in runs if r["arm"] == arm]
        if accs:
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            summary[arm] = {
                "mean_accuracy": round(statistics.mean(accs), 4),
                "sd_accuracy": round(sd, 4),
                "per_seed": accs,
            }
    if complete:
        print(f"\n{'arm':10s} {'mean ± sd acc':>16s} {'per seed':>26s} {'seconds':>8s}")
        for arm, row in summary.items():
            seconds = sum(r["seconds"] for r in runs if r["arm"] == arm)
            per_seed = " ".join(f"{a:.4f}" for a in row["per_seed"])
            mean_sd = f"{row['mean_accuracy']:.4f} ± {row['sd_accuracy']:.4f}"
            print(f"{arm:10s} {mean_sd:>16s} {per_seed:>26s} {seconds:8.0f}")
    path = write_result(
        "bench_search",
        {
            "task": f"banking77, {args.intents} intents, {args.per_intent} train rows each",
            "test_rows": test_rows,
            "epochs": args.epochs,
            "trials_per_search": trials,
            "seeds": seeds,
            "space": SPACE,
            "summary": summary,
            "runs": runs,
            "machine": machine(),
            # the machine is shared: figures taken with other work running are "loaded"
            "load_average_1m": round(os.getloadavg()[0], 2),
            "quick": args.quick,
            "complete": complete,
        },
    )
    if complete:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
