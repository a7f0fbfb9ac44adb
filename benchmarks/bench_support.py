"""Support assistant benchmarks (F10): the WikiQA reranker and Banking77 out-of-scope.

1. WikiQA answer-sentence selection on the standard filter (test questions with at
   least one correct sentence): each question's candidate sentences ranked by BM25
   (bm25s), by dense MiniLM cosine similarity, and by the cross-encoder llmos trains
   itself (`task: rerank`, MiniLM, the one loop) on WikiQA train; MAP and MRR, and the
   reranker's ratio to the stronger baseline. BERT-base cross-encoders report MAP
   0.81-0.83 at full budget.
2. Banking77 out of scope: an intent model trained on 60 intents (llmos text
   classification, MiniLM + LoRA), the other 17 intents' test questions treated as out of
   scope; for each confidence threshold, OOS recall (share of OOS questions under it) and
   in-scope accuracy (correct and over it), and the risk-coverage of in-scope questions
   (answered share, and accuracy of the answered); the row at the assistant's shipped
   threshold (`ops.support.DEFAULT_CONFIDENCE`).

    python benchmarks/bench_support.py --quick     # a reduced run (minutes on 2 cores)
    python benchmarks/bench_support.py             # the full budget

Writes benchmarks/results/support.json (support-quick.json for --quick).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED_DATA, banking77, machine, minilm_path, write_result

WIKIQA = SHARED_DATA / "wikiqa"


def wikiqa(split: str) -> pd.DataFrame:
    frame = pd.read_csv(WIKIQA / f"WikiQA-{split}.tsv", sep="\t", quoting=3, keep_default_na=False)
    return frame.rename(columns={"Question": "question", "Sentence": "passage", "Label": "relevant"})


def filtered(frame: pd.DataFrame) -> pd.DataFrame:
    """Questions with at least one correct sentence (the standard WikiQA evaluation)."""
    keep = frame.groupby("QuestionID")["relevant"].transform("max") == 1
    return frame[keep].reset_index(drop=True)


def ranking(frame: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    from llmos.train.workflows.rerank import ranking_metrics

    m = ranking_metrics(
        frame["QuestionID"].tolist(), list(map(float, scores)), (frame["relevant"] == 1).tolist()
    )
    return {"map": m["map"], "mrr": m["mrr"], "questions": m["ranked_queries"]}


def bm25_scores(frame: pd.DataFrame) -> np.ndarray:
    import bm25s

    sentences = frame["passage"].tolist()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(sentences, stopwords="en", show_progress=False), show_progress=False)
    scores = np.zeros(len(frame))
    for _qid, rows in frame.groupby("QuestionID").groups.items():
        query = bm25s.tokenize([frame.loc[rows[0], "question"]], stopwords="en", show_progress=False)
        ids = query.ids[0] if query.ids else []
        vocab = {v: k for k, v in query.vocab.items()}
        tokens = [vocab[i] for i in ids]
        all_scores = retriever.get_scores(tokens) if tokens else np.zeros(len(sentences))
        scores[list(rows)] = all_scores[list(rows)]
    return scores


def dense_scores(frame: pd.DataFrame) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                batch = tokenizer(
                    texts[i : i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt"
                )
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).float()
                vec = (hidden * mask).sum(1) / mask.sum(1)
                out.append(torch.nn.functional.normalize(vec, dim=-1).numpy())
        return np.concatenate(out)

    questions = frame["question"].unique().tolist()
    qvec = dict(zip(questions, encode(questions)))
    pvec = encode(frame["passage"].tolist())
    return np.array([float(qvec[q] @ p) for q, p in zip(frame["question"], pvec)])


def train_pairs(train: pd.DataFrame, questions: int | None, negatives: int, seed: int) -> pd.DataFrame:
    """Training pairs: every correct sentence of the questions that have one, and up to
    `negatives` of their wrong sentences."""
    rng = random.Random(seed)
    train = filtered(train)
    ids = sorted(train["QuestionID"].unique())
    if questions is not None:
        ids = rng.sample(ids, min(questions, len(ids)))
    rows = []
    for _qid, group in train[train["QuestionID"].isin(ids)].groupby("QuestionID"):
        pos, neg = group[group["relevant"] == 1], group[group["relevant"] == 0]
        rows.append(pos)
        rows.append(neg.sample(min(negatives, len(neg)), random_state=rng.randint(0, 10**6)))
    return pd.concat(rows)[["question", "passage", "relevant"]].sample(frac=1, random_state=seed)


def bench_wikiqa(ws: Any, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    test = filtered(wikiqa("test"))
    if args.test_questions:
        keep = sorted(test["QuestionID"].unique())[: args.test_questions]
        test = test[test["QuestionID"].isin(keep)].reset_index(drop=True)
    pairs = train_pairs(wikiqa("train"), args.train_questions, args.negatives, 0)
    pairs.to_csv(folder / "wikiqa-train.csv", index=False)
    test[["question", "passage", "relevant"]].to_csv(folder / "wikiqa-test.csv", index=False)
    ws.import_dataset(folder / "wikiqa-train.csv", "wikiqa-train")
    ws.import_dataset(folder / "wikiqa-test.csv", "wikiqa-test")
    result: dict[str, Any] = {"train_pairs": len(pairs), "test_pairs": len(test)}
    start = time.perf_counter()
    result["bm25"] = ranking(test, bm25_scores(test))
    result["dense_minilm"] = ranking(test, dense_scores(test))
    result["baseline_seconds"] = round(time.perf_counter() - start, 1)
    spec = {
        "name": "wikiqa-reranker",
        "task": "rerank",
        "model": "minilm",
        "method": "full",
        "data": {"train": "wikiqa-train", "test": "wikiqa-test"},
        "inputs": [{"name": "question", "pair": "passage", "max_length": args.max_length}],
        "outputs": [{"name": "relevant"}],
        "train": {
            "epochs": args.epochs,
            "batch_size": 16,
            "lr": 3e-5,
            "head_lr": 1e-3,
            "warmup": 0.1,
            "seed": 0,
        },
    }
    start = time.perf_counter()
    trained = ws.train(spec)
    m = trained.metrics
    result["reranker"] = {"map": m["map"], "mrr": m["mrr"], "questions": m["ranked_queries"]}
    result["reranker_model"] = trained.model.ref
    result["reranker_train_seconds"] = m["train_seconds"]
    result["reranker_total_seconds"] = round(time.perf_counter() - start, 1)
    strongest = max(result["bm25"]["map"], result["dense_minilm"]["map"])
    result["reranker_map_vs_best_baseline"] = round(m["map"] / strongest, 3)
    return result


def bench_oos(ws: Any, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from llmos.ops.support import DEFAULT_CONFIDENCE

    train, test = banking77()
    intents = sorted(train["category"].unique())
    rng = random.Random(0)
    in_scope = set(rng.sample(intents, 60))
    tr = train[train["category"].isin(in_scope)]
    if args.rows_per_intent:
        tr = tr.sample(frac=1, random_state=0).groupby("category").head(args.rows_per_intent)
    te = test if not args.test_rows else test.sample(min(args.test_rows, len(test)), random_state=0)
    tr.to_csv(folder / "b77-60.csv", index=False)
    ws.import_dataset(folder / "b77-60.csv", "b77-60")
    spec = {
        "name": "b77-60",
        "model": "minilm",
        "method": "lora",
        "data": {"train": "b77-60"},
        "inputs": [{"name": "text", "max_length": 48}],
        "outputs": [{"name": "category"}],
        "train": {"epochs": args.intent_epochs, "batch_size": 32, "seed": 0},
    }
    start = time.perf_counter()
    ws.train(spec)
    seconds = round(time.perf_counter() - start, 1)
    rows = ws.predict("b77-60", te["text"].tolist())  # Workspace.predict: the rows
    label = np.array([r["label"] for r in rows])
    score = np.array([r["score"] for r in rows])
    truth = te["category"].to_numpy()
    inside = np.array([c in in_scope for c in truth])
    curve = []
    for t in [round(x, 2) for x in np.arange(0.0, 1.0, 0.05)] + [DEFAULT_CONFIDENCE]:
        accepted = score >= t
        correct = (label == truth) & accepted
        answered = accepted[inside]
        curve.append(
            {
                "threshold": t,
                "oos_recall": round(float((~accepted[~inside]).mean()), 4),
                "in_scope_accuracy": round(float(correct[inside].mean()), 4),
                "coverage_in_scope": round(float(answered.mean()), 4),
                "accuracy_answered": round(float(correct[inside].sum() / max(answered.sum(), 1)), 4),
                "coverage_all": round(float(accepted.mean()), 4),
            }
        )
    shipped = curve.pop()
    curve.sort(key=lambda r: r["threshold"])
    best = [r for r in curve if r["oos_recall"] >= 0.8]
    return {
        "train_rows": len(tr),
        "test_rows": len(te),
        "oos_test_rows": int((~inside).sum()),
        "intent_train_seconds": seconds,
        "curve": curve,
        "shipped_threshold": shipped,
        "best_in_scope_accuracy_at_oos_recall_0.8": max((r["in_scope_accuracy"] for r in best), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run: fewer questions, rows and steps")
    parser.add_argument("--only", choices=("wikiqa", "oos"), default=None)
    args = parser.parse_args()
    budget = (
        {"train_questions": 160, "negatives": 3, "test_questions": 40, "epochs": 1, "max_length": 64,
         "rows_per_intent": 12, "test_rows": 600, "intent_epochs": 3}
        if args.quick
        else {"train_questions": None, "negatives": 100, "test_questions": None, "epochs": 2,
              "max_length": 128, "rows_per_intent": None, "test_rows": None, "intent_epochs": 5}
    )  # fmt: skip
    for key, value in budget.items():
        setattr(args, key, value)
    from llmos import Workspace

    result: dict[str, Any] = {"quick": args.quick, "budget": budget, "machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ws = Workspace(folder / "ws")
        ws.init()
        if args.only in (None, "wikiqa"):
            result["wikiqa"] = w = bench_wikiqa(ws, folder, args)
            print(
                f"\nWikiQA (filtered test, {w['bm25']['questions']} questions"
                f"{', reduced' if args.quick else ''})"
            )
            print(f"{'ranker':<28}{'MAP':>8}{'MRR':>8}")
            for name in ("bm25", "dense_minilm", "reranker"):
                print(f"{name:<28}{w[name]['map']:>8.4f}{w[name]['mrr']:>8.4f}")
            print(f"reranker MAP / best baseline: {w['reranker_map_vs_best_baseline']}")
        if args.only in (None, "oos"):
            result["oos"] = o = bench_oos(ws, folder, args)
            print(f"\nBanking77 60 in-scope / 17 out-of-scope intents ({o['test_rows']} test questions)")
            print(
                f"{'threshold':>10}{'OOS recall':>12}{'in-scope acc':>14}{'coverage':>10}{'acc answered':>14}"
            )
            for r in [
                *o["curve"],
                {**o["shipped_threshold"], "threshold": f"{o['shipped_threshold']['threshold']}*"},
            ]:
                print(
                    f"{r['threshold']!s:>10}{r['oos_recall']:>12.4f}{r['in_scope_accuracy']:>14.4f}"
                    f"{r['coverage_in_scope']:>10.4f}{r['accuracy_answered']:>14.4f}"
                )
            print("* the assistant's shipped threshold")
    name = "support" + ("-quick" if args.quick else "") + (f"-{args.only}" if args.only else "")
    path = write_result(name, result)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
