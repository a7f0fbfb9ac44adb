"""Knowledge retrieval: quality of BM25, dense MiniLM and hybrid search, and its speed.

- WikiQA answer selection (the standard filter: test questions with at least one correct
  sentence): each question's candidate sentences ranked by BM25, dense all-MiniLM-L6-v2
  and hybrid (RRF and weighted) over one index of every test sentence, the question's own
  candidates selected with a metadata filter; MAP and MRR.
- Banking77 FAQ: an FAQ collection imported with `Workspace.import_collection` from
  Banking77 train questions (`--faq-per-intent` rows per intent; the answer is the intent's
  name in words, as no support answers ship with the data), queried with held-out
  Banking77 test questions; an entry is relevant when its intent is the query's.
  nDCG@10 and Recall@5 (share of the relevant entries in the first five). The fusion
  (RRF or weighted) and its dense weight are chosen on `--validation` Banking77 train
  questions that are not FAQ entries, never on the test queries.
- Speed: hybrid search (k = 10, query encoding included) p50/p99, wall clock and the
  thread's CPU time (a shared machine's wall clock is mostly waiting), over `--chunks`
  chunks (real WikiQA and Banking77 texts, repeated with a counter to reach the size);
  the dense matrix is random unit vectors unless `--encode-all` (MiniLM on every chunk,
  slow on a CPU): search cost does not depend on what the vectors hold. Index build
  throughput: MiniLM encoding chunks/s on the WikiQA test sentences, BM25 build chunks/s
  on all `--chunks`.

Ratios compare hybrid with the best single retriever (what a user has without fusion).
Prints a table and writes `benchmarks/results/bench_knowledge.json`.

    python benchmarks/bench_knowledge.py --quick   # 400 Banking77 queries, 20,000-chunk speed run
    python benchmarks/bench_knowledge.py           # 3,080 queries, 100,000 chunks
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, banking77, machine, write_result

RETRIEVERS = [
    ("bm25", {"mode": "bm25"}),
    ("dense", {"mode": "dense"}),
    ("hybrid-rrf", {"mode": "hybrid", "fusion": "rrf"}),
    ("hybrid-weighted", {"mode": "hybrid", "fusion": "weighted", "weight": 0.5}),
    ("hybrid-rrf-0.8", {"mode": "hybrid", "fusion": "rrf", "weight": 0.8}),
    ("hybrid-weighted-0.8", {"mode": "hybrid", "fusion": "weighted", "weight": 0.8}),
]


def wikiqa(encoder: Any) -> dict[str, Any]:
    from llmos.knowledge.chunking import Chunk
    from llmos.knowledge.index import KnowledgeIndex

    frame = pd.read_csv(SHARED_DATA / "wikiqa" / "WikiQA-test.tsv", sep="\t", quoting=3, dtype=str)
    frame["Label"] = frame["Label"].astype(int)
    # the standard filter (WikiQA-test-filtered.ref, 237 questions): a question with at
    # least one correct sentence and one wrong (6 questions whose sentences are all correct
    # would score 1.0 for any ranking)
    labels = frame.groupby("QuestionID")["Label"]
    keep = (labels.transform("max") > 0) & (labels.transform("min") == 0)
    frame = frame[keep].reset_index(drop=True)
    chunks = [
        Chunk("wikiqa", r.DocumentTitle, "text", i, r.Sentence, {"qid": r.QuestionID, "label": int(r.Label)})
        for i, r in enumerate(frame.itertuples(index=False))
    ]
    start = time.perf_counter()
    index = KnowledgeIndex.build(chunks, encoder)
    build_s = time.perf_counter() - start
    questions = frame.groupby("QuestionID", sort=False).agg(q=("Question", "first"), n=("Label", "size"))
    vectors = encoder(questions["q"].tolist())
    scores: dict[str, dict[str, float]] = {}
    for name, options in RETRIEVERS:
        aps, rrs = [], []
        for (qid, row), vector in zip(questions.iterrows(), vectors, strict=True):
            hits = index.search(row["q"], vector, k=int(row["n"]), filters={"qid": qid}, **options)
            labels = [index.chunks[h.row].metadata["label"] for h in hits]
            total = int(frame.loc[frame["QuestionID"] == qid, "Label"].sum())
            aps.append(_average_precision(labels, total))
            rrs.append(next((1 / (i + 1) for i, label in enumerate(labels) if label), 0.0))
        scores[name] = {"MAP": round(float(np.mean(aps)), 4), "MRR": round(float(np.mean(rrs)), 4)}
    return {
        "questions": len(questions),
        "sentences": len(chunks),
        "build_s": round(build_s, 2),
        "build_chunks_per_s": round(len(chunks) / build_s, 1),
        "scores": scores,
    }


def _average_precision(labels: list[int], total: int) -> float:
    found, precisions = 0, []
    for i, label in enumerate(labels):
        if label:
            found += 1
            precisions.append(found / (i + 1))
    return sum(precisions) / total if total else 0.0


FUSION_GRID = [(f, round(w, 1)) for f in ("rrf", "weighted") for w in np.arange(0.5, 0.95, 0.1)]


def _faq_scores(
    index: Any, frame: pd.DataFrame, vectors: np.ndarray, relevant: dict[str, int], **options: Any
):
    """nDCG@10 and Recall@5 of `index.search` over the queries of `frame`."""
    ndcgs, recalls = [], []
    for text, intent, vector in zip(frame["text"], frame["category"], vectors, strict=True):
        hits = index.search(text, vector, k=10, **options)
        gains = [1.0 if index.chunks[h.row].metadata.get("intent") == intent else 0.0 for h in hits]
        n = relevant.get(intent, 0)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(n, 10)))
        ndcgs.append(sum(g / math.log2(i + 2) for i, g in enumerate(gains)) / ideal if ideal else 0.0)
        recalls.append(sum(gains[:5]) / min(n, 5) if n else 0.0)
    return {"nDCG@10": round(float(np.mean(ndcgs)), 4), "Recall@5": round(float(np.mean(recalls)), 4)}


def banking_faq(folder: Path, per_intent: int, queries: int, validation: int) -> dict[str, Any]:
    """The FAQ collection through `Workspace.import_collection`, searched through its
    stored index (the search path of `ops.search_collection`, with each query encoded
    once for every retriever). The fusion and its weight are chosen on `validation`
    Banking77 *train* questions that are not FAQ entries; the test queries only score."""
    from llmos import Workspace
    from llmos.knowledge.collections import get_collection, load_index
    from llmos.knowledge.encoders import encoder_for

    train, test = banking77()
    faq = train.groupby("category").sample(n=per_intent, random_state=0)
    val = train.drop(faq.index).sample(validation, random_state=1)
    faq = pd.DataFrame(
        {
            "question": faq["text"].str.strip(),
            "answer": faq["category"].str.replace("_", " ").str.capitalize() + ".",
            "intent": faq["category"],
        }
    )
    path = folder / "banking_faq.csv"
    faq.to_csv(path, index=False)
    ws = Workspace(folder / "ws")
    ws.init()
    start = time.perf_counter()
    imported = ws.import_collection([path], "bank-faq")
    import_s = time.perf_counter() - start
    row = get_collection(ws.store, "default", "bank-faq")
    index = load_index(ws.store, row)
    encode = encoder_for(str(row.encoder))
    sample = test.sample(min(queries, len(test)), random_state=1) if queries < len(test) else test
    relevant = faq["intent"].value_counts().to_dict()
    vectors = {"val": encode(val["text"].tolist()), "test": encode(sample["text"].tolist())}
    frames = {"val": val, "test": sample}

    def scores(split: str, **options: Any) -> dict[str, float]:
        return _faq_scores(index, frames[split], vectors[split], relevant, **options)

    grid = {
        (fusion, weight): scores("val", mode="hybrid", fusion=fusion, weight=weight)
        for fusion, weight in FUSION_GRID
    }
    fusion, weight = max(grid, key=lambda fw: (grid[fw]["nDCG@10"], grid[fw]["Recall@5"]))
    result: dict[str, dict[str, float]] = {
        "bm25": scores("test", mode="bm25"),
        "dense": scores("test", mode="dense"),
        "hybrid-rrf": scores("test", mode="hybrid", fusion="rrf"),
        f"hybrid-{fusion}-{weight} (validation)": scores("test", mode="hybrid", fusion=fusion, weight=weight),
    }
    return {
        "faq_entries": len(faq),
        "queries": len(sample),
        "validation_queries": len(val),
        "import_s": round(import_s, 2),
        "import_chunks_per_s": round(imported.chunks / import_s, 1),
        "validation": {
            "bm25": scores("val", mode="bm25"),
            "dense": scores("val", mode="dense"),
            **{f"hybrid-{f}-{w}": v for (f, w), v in grid.items()},
        },
        "chosen_on_validation": {"fusion": fusion, "weight": weight},
        "scores": result,
    }


def speed(encoder: Any, n_chunks: int, encode_all: bool, n_queries: int = 200) -> dict[str, Any]:
    from llmos.knowledge.chunking import Chunk
    from llmos.knowledge.index import KnowledgeIndex, tokenize

    texts: list[str] = []
    for split in ("train", "dev", "test"):
        texts += pd.read_csv(SHARED_DATA / "wikiqa" / f"WikiQA-{split}.tsv", sep="\t", quoting=3, dtype=str)[
            "Sentence"
        ].tolist()
    train, test = banking77()
    texts += train["text"].tolist()
    base = len(texts)
    while len(texts) < n_chunks:
        texts.append(f"{texts[len(texts) % base]} {len(texts) // base}")
    texts = texts[:n_chunks]
    chunks = [Chunk(f"doc{i // 50}", "", "text", i % 50, t, {}) for i, t in enumerate(texts)]
    start = time.perf_counter()
    tokens = [tokenize(c.text) for c in chunks]
    tokenize_s = time.perf_counter() - start
    if encode_all:
        start = time.perf_counter()
        embeddings = encoder(texts)
        encode_s = time.perf_counter() - start
    else:
        rng = np.random.default_rng(0)
        embeddings = rng.standard_normal((n_chunks, 384), dtype=np.float32)
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        encode_s = None
    start = time.perf_counter()
    index = KnowledgeIndex(chunks, tokens, embeddings)
    bm25_s = time.perf_counter() - start
    queries = test["text"].sample(n_queries, random_state=2).tolist()
    for q in queries[:10]:  # warm-up
        index.search(q, encoder([q])[0], k=10)
    # wall-clock and this thread's CPU time per stage: on a machine shared with other
    # sessions the wall clock mostly measures waiting for a core; the CPU time is the work
    # a query costs (what an idle core would take, give or take cache and memory contention)
    stages = ("hybrid", "encode", "search", "bm25", "dense")
    wall: dict[str, list[float]] = {name: [] for name in stages}
    cpu: dict[str, list[float]] = {name: [] for name in stages}
    for q in queries:
        t0, c0 = time.perf_counter(), time.thread_time()
        vector = encoder([q])[0]
        t1, c1 = time.perf_counter(), time.thread_time()
        index.search(q, vector, k=10, mode="hybrid")
        t2, c2 = time.perf_counter(), time.thread_time()
        index.bm25_scores(q)
        t3, c3 = time.perf_counter(), time.thread_time()
        index.dense_scores(vector)
        t4, c4 = time.perf_counter(), time.thread_time()
        for times, (a, b, c, d, e) in ((wall, (t0, t1, t2, t3, t4)), (cpu, (c0, c1, c2, c3, c4))):
            times["hybrid"].append((c - a) * 1000)
            times["encode"].append((b - a) * 1000)
            times["search"].append((c - b) * 1000)
            times["bm25"].append((d - c) * 1000)
            times["dense"].append((e - d) * 1000)
    pct = {
        name: {
            "p50_ms": round(float(np.percentile(wall[name], 50)), 2),
            "p99_ms": round(float(np.percentile(wall[name], 99)), 2),
            "cpu_p50_ms": round(float(np.percentile(cpu[name], 50)), 2),
            "cpu_p99_ms": round(float(np.percentile(cpu[name], 99)), 2),
        }
        for name in stages
    }
    load = os.getloadavg()[0]
    return {
        "chunks": n_chunks,
        "queries": n_queries,
        "dense_vectors": "MiniLM" if encode_all else "random unit vectors",
        "latency": pct,
        "load_average_1min": round(load, 2),
        "tokenize_chunks_per_s": round(n_chunks / tokenize_s),
        "bm25_build_chunks_per_s": round(n_chunks / bm25_s),
        "encode_chunks_per_s": round(n_chunks / encode_s, 1) if encode_s else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 FAQ queries, 20,000 chunks for speed")
    parser.add_argument("--chunks", type=int, default=None, help="chunks in the speed run (default 100,000)")
    parser.add_argument("--faq-per-intent", type=int, default=3)
    parser.add_argument("--queries", type=int, default=None, help="held-out Banking77 queries")
    parser.add_argument(
        "--validation", type=int, default=600, help="Banking77 train questions that choose the fusion"
    )
    parser.add_argument("--encode-all", action="store_true", help="embed every speed-run chunk with MiniLM")
    parser.add_argument("--skip", nargs="*", default=[], choices=["wikiqa", "faq", "speed"])
    args = parser.parse_args()
    n_chunks = args.chunks or (20_000 if args.quick else 100_000)
    queries = args.queries or (400 if args.quick else 3080)

    import torch

    from llmos.knowledge.encoders import encoder_for

    torch.set_num_threads(1)
    encoder = encoder_for("minilm")
    result: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    if "wikiqa" not in args.skip:
        result["wikiqa"] = wikiqa(encoder)
        report({"wikiqa": result["wikiqa"]})
        save(result)
    if "faq" not in args.skip:
        with tempfile.TemporaryDirectory() as folder:
            result["banking_faq"] = banking_faq(Path(folder), args.faq_per_intent, queries, args.validation)
        report({"banking_faq": result["banking_faq"]})
        save(result)
    if "speed" not in args.skip:
        result["speed"] = speed(encoder, n_chunks, args.encode_all)
        report({"speed": result["speed"]})
        save(result)
    print("wrote benchmarks/results/bench_knowledge.json")


def save(result: dict[str, Any]) -> None:
    """Write after each section, keeping the sections of an earlier run that `--skip` left out."""
    import json

    from common import RESULTS

    path = RESULTS / "bench_knowledge.json"
    earlier = json.loads(path.read_text()) if path.exists() else {}
    write_result("bench_knowledge", {**earlier, **result})


def report(result: dict[str, Any]) -> None:
    if "wikiqa" in result:
        w = result["wikiqa"]
        print(f"\nWikiQA test ({w['questions']} questions, {w['sentences']} sentences)")
        print(f"{'retriever':<21}{'MAP':>8}{'MRR':>8}")
        for name, s in w["scores"].items():
            print(f"{name:<21}{s['MAP']:>8.4f}{s['MRR']:>8.4f}", flush=True)
        best = max(w["scores"]["bm25"]["MAP"], w["scores"]["dense"]["MAP"])
        print(f"hybrid-rrf MAP / best single: {w['scores']['hybrid-rrf']['MAP'] / best:.3f}")
    if "banking_faq" in result:
        b = result["banking_faq"]
        print(f"\nBanking77 FAQ ({b['faq_entries']} entries, {b['queries']} held-out queries)")
        print(f"{'retriever':<21}{'nDCG@10':>9}{'Recall@5':>10}")
        for name, s in b["scores"].items():
            print(f"{name:<21}{s['nDCG@10']:>9.4f}{s['Recall@5']:>10.4f}")
        chosen = b["chosen_on_validation"]
        name = f"hybrid-{chosen['fusion']}-{chosen['weight']} (validation)"
        for metric in ("nDCG@10", "Recall@5"):
            best = max(b["scores"]["bm25"][metric], b["scores"]["dense"][metric])
            print(f"{name} {metric} / best single: {b['scores'][name][metric] / best:.3f}")
        print(f"import (MiniLM + BM25): {b['import_chunks_per_s']} chunks/s")
    if "speed" in result:
        s = result["speed"]
        print(
            f"\nSearch over {s['chunks']} chunks, k=10, {s['queries']} queries (dense: {s['dense_vectors']})"
        )
        print(f"(load average {s.get('load_average_1min', '?')} on {os.cpu_count()} cores)")
        print(f"{'stage':<10}{'wall p50':>10}{'wall p99':>10}{'CPU p50':>10}{'CPU p99':>10}  (ms)")
        for name, v in s["latency"].items():
            print(
                f"{name:<10}{v['p50_ms']:>10.2f}{v['p99_ms']:>10.2f}"
                f"{v.get('cpu_p50_ms', float('nan')):>10.2f}{v.get('cpu_p99_ms', float('nan')):>10.2f}"
            )
        print(
            f"build: tokenize {s['tokenize_chunks_per_s']} chunks/s, "
            f"BM25 {s['bm25_build_chunks_per_s']} chunks/s"
            + (f", MiniLM {s['encode_chunks_per_s']} chunks/s" if s["encode_chunks_per_s"] else "")
        )


if __name__ == "__main__":
    main()
