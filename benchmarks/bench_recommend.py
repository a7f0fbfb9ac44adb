"""Recommendation on MovieLens (latest-small): every llmos model beside `implicit`'s ALS
and BPR and a popularity baseline, on the same split in the same run; the cold-start
experiment; and the serving latency of `POST /v1/deployments/{name}/recommend` at 8
concurrent clients against a real `llmos serve` process.

Protocols: the stratified 75/25 random split per user (Microsoft Recommenders' MovieLens
benchmark) and leave-last-out by time. Full ranking over every movie, each user's
training movies filtered. The llmos models train through `Workspace.train` (the real
path: import, spec, workflow, registry); the peers train on exactly the same training
rows (`llmos.train.ranking.split` with the same seed) and are ranked by the same
`evaluate`.

Hyper-parameters are chosen on a validation split, never on the test: the training part
is split again by the same protocol (seed 43), each candidate setting of implicit's ALS
and BPR (factors, regularisation, alpha / learning rate, iterations: the grid below) and
of llmos's EASE (l2) is trained on the rest and ranked on it, and the best by NDCG@10 is
trained on the whole training part and scored once on the test. llmos's `als` and
`itemknn` *are* implicit's; llmos `als` runs with the settings chosen for implicit's ALS.

Cold start: the interactions of a random 10% of the movies (seed 42) are withheld from
training; each model then ranks only those movies for the users who rated them, with
Recall@10 beside the random ranking's; a model that gives those movies one score for
all (no signal) is marked "cannot rank".

    python benchmarks/bench_recommend.py [--quick] [--out results/bench_recommend.json]

`--quick` (shared 2-core machine): fewer epochs, a smaller grid, fewer requests.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DATA = (
    Path(os.environ.get("LLMOS_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    / "movielens-latest-small"
)
K = 10
MODELS = ("popularity", "itemknn", "als", "bpr", "ease", "sasrec", "content")
QUICK_MODELS = MODELS
ITEM_COLUMNS = {"text": ["title"], "category": ["genres", "decade", "tags"], "number": [], "separator": "|"}


def movies_table() -> pd.DataFrame:
    """movieId, title (without its year), genres, decade and tags (every tag users gave
    the movie, joined by |): what the content model reads."""
    movies = pd.read_csv(DATA / "movies.csv")
    tags = pd.read_csv(DATA / "tags.csv")
    joined = tags.groupby("movieId")["tag"].apply(
        lambda s: "|".join(sorted(set(s.astype(str).str.strip().str.lower())))
    )
    year = movies["title"].str.extract(r"\((\d{4})\)\s*$")[0]
    return pd.DataFrame(
        {
            "movieId": movies["movieId"],
            "title": movies["title"].str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True),
            "genres": movies["genres"].replace("(no genres listed)", ""),
            "decade": (year.astype(float) // 10 * 10).map(lambda y: "" if y != y else f"{int(y)}s"),
            "tags": movies["movieId"].map(joined).fillna(""),
        }
    )


def llmos_spec(model: str, protocol: str, settings: dict[str, Any], quick: bool) -> dict[str, Any]:
    torch_train = {
        "bpr": {"epochs": 20 if quick else 60, "batch_size": 4096, "lr": 0.02},
        # chosen on leave-last-out by two trials (lr 0.005 / batch 64: NDCG@10 0.015; 0.003 / 32: 0.034)
        "sasrec": {"epochs": 8 if quick else 20, "batch_size": 32, "lr": 0.003},
    }
    return {
        "name": f"ml-{model}-{protocol}",
        "task": "recommendation",
        "data": {"train": "ratings"},
        "inputs": [
            {
                "user": "userId",
                "item": "movieId",
                "rating": "rating",
                "timestamp": "timestamp",
                "scale": [0.5, 5],
            }
        ],
        "recommendation": {
            "model": model,
            "refit": False,
            "evaluation": {"protocol": protocol, "test": 0.25, "k": K, "seed": 42},
            "max_length": 50,
            "dropout": 0.3,
            **settings,
            **({"items": {"data": "movies", "id": "movieId", **ITEM_COLUMNS}} if model == "content" else {}),
        },
        "train": torch_train.get(model, {}),
    }


def arrays(ratings: pd.DataFrame) -> tuple[Any, Any]:
    from llmos.modalities.interactions import InteractionsDriver

    driver = InteractionsDriver(user="userId", item="movieId", rating="rating", timestamp="timestamp")
    rows = driver.read(ratings, "ratings.csv")
    driver.fit(rows)
    return driver, driver.arrays(rows)


def peer_scores(
    name: str, params: dict[str, Any], train: Any, n_users: int, n_items: int
) -> tuple[Any, float]:
    """implicit's model `name` (als, bpr) fitted on `train`: its score function and fit seconds."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import bm25_weight
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    matrix = csr_matrix((train.weights, (train.users, train.items)), shape=(n_users, n_items))
    if name == "als":
        model: Any = AlternatingLeastSquares(random_state=42, **params)
        weighted = bm25_weight(matrix, K1=100, B=0.8).tocsr()
    else:
        model = BayesianPersonalizedRanking(random_state=42, **params)
        weighted = (matrix > 0).astype(np.float32).tocsr()
    started = time.perf_counter()
    with threadpool_limits(1, "blas"):
        model.fit(weighted, show_progress=False)
    seconds = time.perf_counter() - started
    u, v = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return (lambda users, histories: u[users] @ v.T), seconds


def llmos_scores(
    model: str, settings: dict[str, Any], train: Any, n_users: int, n_items: int, features: Any = None
) -> Any:
    """An llmos model class fitted directly on `train` (tuning and the cold-start
    experiment; no torch models); `features`: the content model's item features."""
    from llmos.models.recommenders import RECOMMENDERS, user_item_matrix
    from llmos.spec.features import RecommendationConfig
    from llmos.train.ranking import histories

    full = RecommendationConfig(model=model, **settings).model_dump(exclude={"evaluation", "items", "refit"})
    m = RECOMMENDERS[model](n_users, n_items, full)
    if features is not None and m.reads_items:
        m.features = features
    m.fit(
        user_item_matrix(train.users, train.items, train.weights, n_users, n_items), histories(train, n_users)
    )
    return m


def content_l2(
    train: Any, features: Any, als: dict[str, Any], n_users: int, n_items: int, warm: np.ndarray
) -> tuple[float, list[dict[str, float]]]:
    """The content model's ridge, chosen by withholding 10% of the *training* movies
    (seed 43) and ranking those for their users (never the test movies)."""
    from llmos.train.ranking import evaluate

    rng = np.random.default_rng(43)
    held = np.sort(rng.choice(warm, len(warm) // 10, replace=False))
    mask = np.isin(train.items, held)
    fit_part, valid = train.take(~mask), train.take(mask)
    trials = []
    for l2 in (1.0, 10.0, 100.0):
        m = llmos_scores("content", {**als, "l2": l2}, fit_part, n_users, n_items, features)
        recall = evaluate(m.scores, fit_part, valid, n_users, n_items, K, restrict=held)[f"recall@{K}"]
        trials.append({"l2": l2, "validation_recall@10": recall})
        print(f"  validation cold start content l2 {l2}: recall@10 {recall:.4f}", flush=True)
    return max(trials, key=lambda t: t["validation_recall@10"])["l2"], trials


def grids(quick: bool) -> dict[str, list[dict[str, Any]]]:
    als = [
        {"factors": f, "regularization": r, "alpha": a, "iterations": 15}
        for f in (64, 128)
        for r in (0.05, 0.5)
        for a in (1.0, 4.0)
    ]
    bpr = [
        {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": it}
        for f in (64, 128)
        for lr in (0.01, 0.05)
        for it in (100, 300)
    ]
    ease = [{"l2": v} for v in (100.0, 300.0, 1000.0)]
    if quick:  # the peers' grid stays whole: their fits take seconds
        ease = ease[:2]
    return {"als": als, "bpr": bpr, "ease": ease}


def tune(protocol: str, train: Any, n_users: int, n_items: int, quick: bool) -> dict[str, Any]:
    """The best setting of each tuned model by NDCG@10 on a validation split of `train`."""
    from llmos.train.ranking import evaluate, split

    mask, _ = split(train, protocol, 0.25, 43)
    fit_part, valid = train.take(~mask), train.take(mask)
    chosen: dict[str, Any] = {}
    for name, grid in grids(quick).items():
        trials = []
        for params in grid:
            if name == "ease":
                score = llmos_scores("ease", params, fit_part, n_users, n_items).scores
            else:
                score, _ = peer_scores(name, params, fit_part, n_users, n_items)
            ndcg = evaluate(score, fit_part, valid, n_users, n_items, K)[f"ndcg@{K}"]
            trials.append({**params, "validation_ndcg@10": ndcg})
            print(f"  validation {protocol} {name} {params}: ndcg@10 {ndcg:.4f}", flush=True)
        best = max(trials, key=lambda t: t["validation_ndcg@10"])
        chosen[name] = {
            "best": {k: v for k, v in best.items() if k != "validation_ndcg@10"},
            "trials": trials,
        }
    return chosen


def cold_start(ws: Any, ratings: pd.DataFrame, table: pd.DataFrame, tuned: dict[str, Any]) -> dict[str, Any]:
    """Withhold every interaction of 10% of the movies; rank only those for their users."""
    from llmos.models.content import item_features
    from llmos.train.ranking import evaluate

    driver, data = arrays(ratings)
    driver.add_items(sorted(set(table["movieId"].astype(str)) - set(driver.item_index)))
    n_users, n_items = len(driver.users), len(driver.items)
    rng = np.random.default_rng(42)
    touched = np.unique(data.items)
    cold = np.sort(rng.choice(touched, len(touched) // 10, replace=False))
    mask = np.isin(data.items, cold)
    train, test = data.take(~mask), data.take(mask)
    rows: list[dict[str, Any]] = []

    from llmos.train.ranking import histories

    seen = histories(train, n_users)
    probe_users = np.unique(test.users)[:8]

    def measure(name: str, score: Any, seconds: float) -> None:
        metrics = evaluate(score, train, test, n_users, n_items, K, restrict=cold)
        probe = np.asarray(score(probe_users, [seen[u] for u in probe_users]))[:, cold]
        distinct = int(max(len(np.unique(r)) for r in probe)) if name != "random" else len(cold)
        ranks = distinct > 1
        rows.append({"model": name, **metrics, "can_rank": ranks, "train_seconds": round(seconds, 2)})
        print(f"  cold start {name:12} recall@10 {metrics[f'recall@{K}']:.4f} can rank: {ranks}", flush=True)

    rng_scores = np.random.default_rng(0)
    measure("random", lambda users, histories: rng_scores.random((len(users), n_items)), 0.0)

    indexed = table.set_index(table["movieId"].astype(str))
    features = item_features(
        indexed, driver.items, ITEM_COLUMNS["text"], ITEM_COLUMNS["category"], [], "|", "minilm"
    )
    als = tuned["als"]
    l2, trials = content_l2(train, features, als, n_users, n_items, touched[~np.isin(touched, cold)])
    for model, settings in (
        ("popularity", {}),
        ("als", als),
        ("ease", tuned["ease"]),
        ("content", {**als, "l2": l2}),
    ):
        started = time.perf_counter()
        m = llmos_scores(model, settings, train, n_users, n_items, features)
        measure(f"llmos {model}", m.scores, time.perf_counter() - started)
    random_recall = rows[0][f"recall@{K}"]
    content = next(r for r in rows if r["model"] == "llmos content")
    return {
        "cold_items": len(cold),
        "test_interactions": len(test),
        "rows": rows,
        "content_l2_validation": trials,
        "content_over_random_recall@10": round(content[f"recall@{K}"] / max(random_recall, 1e-9), 2),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ws: Any) -> tuple[subprocess.Popen[bytes], int]:
    """`llmos serve` over the benchmark's workspace, in its own process."""
    port = free_port()
    code = "import sys; from llmos.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "LLMOS_HOME": str(ws.settings.home)}
    server = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port), "--insecure-no-auth"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


def wait_healthy(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
            return
        except Exception:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("llmos serve did not start") from None
            time.sleep(0.5)


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: {exc.code} {exc.read().decode()[:300]}") from None


def click_learning(ws: Any, ratings: pd.DataFrame, als: dict[str, Any], quick: bool) -> dict[str, Any]:
    """ALS (random split, no refit) deployed and served; every user asks for a top-50
    and clicks the served movies that are among their held-out (test) movies, each click
    posted to the feedback route (request id + movie); then `llmos adapt` with no data
    reads those clicks, and the gate decides (held-out clicks and the model's own test)."""
    from llmos.train.ranking import split

    ws.train({**llmos_spec("als", "random", als, quick), "name": "ml-als-clicks"})
    ws.deploy("ml-als-clicks", "clicks")
    driver, data = arrays(ratings)
    mask, _ = split(data, "random", 0.25, 42)
    held: dict[str, set[str]] = {}
    for u, i in zip(data.users[mask].tolist(), data.items[mask].tolist()):
        held.setdefault(driver.users[u], set()).add(driver.items[i])
    server, port = start_server(ws)
    base = f"http://127.0.0.1:{port}/v1/deployments/clicks"
    clicks = 0
    try:
        wait_healthy(server, port)
        for user, wanted in held.items():
            answer = post(f"{base}/recommend", {"user": user, "k": 50})
            for row in answer["items"]:
                if row["item"] in wanted:
                    post(f"{base}/feedback", {"request_id": answer["request_id"], "label": row["item"]})
                    clicks += 1
    finally:
        server.terminate()
        server.wait(30)
    started = time.perf_counter()
    result = ws.adapt("clicks")
    return {
        "users": len(held),
        "clicks_posted": clicks,
        "decision": result.decision,
        "reasons": result.reasons,
        "metrics": result.metrics,
        "held_out_clicks": result.lineage["held_out_clicks"],
        "adapt_seconds": round(time.perf_counter() - started, 2),
    }


def serve_latency(
    ws: Any, model: str, ratings: pd.DataFrame, requests: int, clients: int = 8
) -> dict[str, Any]:
    """`llmos serve` in its own process; 8 client threads ask for top-10 of random users
    (and a few unknown ones); every answer is checked against the user's training items."""
    ws.deploy(model, "movies")
    seen = ratings.groupby(ratings["userId"].astype(str))["movieId"].apply(lambda s: set(s.astype(str)))
    trained = ws.model(model)
    # what the model saw: with refit off, its training split; the check reads the model's own record
    seen_by_model = _model_seen(ws, trained)
    users = sorted(seen.index)
    server, port = start_server(ws)
    endpoint = f"http://127.0.0.1:{port}/v1/deployments/movies/recommend"
    latencies: list[float] = []
    problems = {"errors": 0, "seen_returned": 0, "cold_start_wrong": 0, "short": 0}
    lock = threading.Lock()

    def call(user: str) -> None:
        body = json.dumps({"user": user, "k": K}).encode()
        request = urllib.request.Request(endpoint, body, {"Content-Type": "application/json"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                answer = json.loads(r.read())
        except Exception:
            with lock:
                problems["errors"] += 1
            return
        elapsed = time.perf_counter() - started
        got = {row["item"] for row in answer["items"]}
        with lock:
            latencies.append(elapsed)
            problems["short"] += len(got) != K
            problems["seen_returned"] += bool(got & seen_by_model.get(user, set()))
            problems["cold_start_wrong"] += answer["cold_start"] != (user not in seen_by_model)

    try:
        wait_healthy(server, port)
        for user in users[:20]:  # warm up: the model loads on the first request
            call(user)
        latencies.clear()
        problems = dict.fromkeys(problems, 0)

        def client(c: int) -> None:
            rng = np.random.default_rng(c)
            for n in range(requests // clients):
                call(f"stranger-{c}-{n}" if n % 20 == 0 else users[int(rng.integers(len(users)))])

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(30)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {
        "model": model,
        "catalogue": int(ratings["movieId"].nunique()),
        "clients": clients,
        "requests": len(ordered),
        "req_per_s": round(len(ordered) / wall, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        **problems,
    }


def _model_seen(ws: Any, model: Any) -> dict[str, set[str]]:
    """Each user's items as the registered model stores them (what it must never return)."""
    from llmos.models.recommenders import RecommenderModel
    from llmos.store.models import get_model, model_folder

    folder = model_folder(ws.store, get_model(ws.store, model.ref))
    loaded = RecommenderModel(folder, json.loads((folder / "llmos_model.json").read_text()))
    return {u: {loaded.items[i] for i in loaded.history(n)} for n, u in enumerate(loaded.users)}


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print("model                      | ndcg@10 | recall@10 | map@10 | coverage | train s")
    for r in rows:
        print(
            f"{r['model']:26} | {r[f'ndcg@{K}']:.4f}  | {r[f'recall@{K}']:.4f}    | {r[f'map@{K}']:.4f} |"
            f" {r['coverage']:.4f}   | {r['train_seconds']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs, trials and requests")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_recommend.json"))
    parser.add_argument("--models", default=None, help=f"default: {','.join(MODELS)}")
    parser.add_argument("--protocols", default="random,leave-last")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: cold,serve,clicks")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep --out's results: its tuned settings (no tuning) and the rows of models not run now",
    )
    args = parser.parse_args()
    import torch

    from llmos import Workspace
    from llmos.train.ranking import evaluate, split

    torch.set_num_threads(1)
    ratings = pd.read_csv(DATA / "ratings.csv")
    table = movies_table()
    home = Path(tempfile.mkdtemp(prefix="bench-rec-"))
    ws = Workspace(home)
    ws.init()
    ws.import_dataset(DATA / "ratings.csv", "ratings")
    table.to_csv(home / "movies.csv", index=False)
    ws.import_dataset(home / "movies.csv", "movies")
    models = (args.models or ",".join(QUICK_MODELS if args.quick else MODELS)).split(",")
    out = Path(args.out)
    previous = json.loads(out.read_text()) if args.reuse and out.exists() else {}
    report: dict[str, Any] = {
        **previous,
        "data": str(DATA),
        "k": K,
        "quick": args.quick,
        "loaded_machine": True,
    }
    report["protocols"] = dict(previous.get("protocols", {}))
    driver, data = arrays(ratings)
    n_users, n_items = len(driver.users), len(driver.items)
    tuned_random: dict[str, Any] = {}
    for protocol in args.protocols.split(","):
        mask, _ = split(data, protocol, 0.25, 42)
        train, test = data.take(~mask), data.take(mask)
        kept = report["protocols"].get(protocol)
        tuned = kept["tuning"] if kept else tune(protocol, train, n_users, n_items, args.quick)
        best = {name: t["best"] for name, t in tuned.items()}
        if protocol == "random":
            tuned_random = best
        ran = {f"llmos {m}" for m in models}
        rows = [r for r in (kept or {}).get("rows", []) if r["library"] == "llmos" and r["model"] not in ran]
        llmos_settings = {"als": best["als"], "ease": best["ease"], "content": best["als"]}
        for model in models:
            outcome = ws.train(llmos_spec(model, protocol, llmos_settings.get(model, {}), args.quick))
            m = outcome.metrics
            rows.append({"model": f"llmos {model}", "library": "llmos", **{k: m[k] for k in _keys()}})
            print(
                f"{protocol:10} llmos {model:10} ndcg@10 {m['ndcg@10']:.4f} ({m['train_seconds']} s)",
                flush=True,
            )
        rows.sort(key=lambda r: MODELS.index(r["model"].split()[-1]))
        for name in ("als", "bpr"):
            score, seconds = peer_scores(name, best[name], train, n_users, n_items)
            metrics = evaluate(score, train, test, n_users, n_items, K)
            rows.append(
                {
                    "model": f"implicit {name.upper()}",
                    "library": "implicit",
                    **metrics,
                    "train_seconds": round(seconds, 2),
                }
            )
        best_llmos = max(rows, key=lambda r: r[f"ndcg@{K}"] if r["library"] == "llmos" else -1)
        best_peer = max(r[f"ndcg@{K}"] for r in rows if r["library"] == "implicit")
        pop = next((r[f"ndcg@{K}"] for r in rows if r["model"] == "llmos popularity"), None)
        sas = next((r[f"ndcg@{K}"] for r in rows if r["model"] == "llmos sasrec"), None)
        report["protocols"][protocol] = {
            "rows": rows,
            "tuning": tuned,
            "best_llmos": best_llmos["model"],
            "best_llmos_over_best_implicit": round(best_llmos[f"ndcg@{K}"] / best_peer, 3),
            "sasrec_over_popularity": round(sas / pop, 3) if sas and pop else None,
        }
        print_table(f"{protocol}: chosen on validation: {json.dumps(best)}", rows)
        summary = report["protocols"][protocol]
        print(
            f"best llmos ({summary['best_llmos']}) / best implicit (NDCG@10): "
            f"{summary['best_llmos_over_best_implicit']}"
        )
        print(f"sasrec / popularity (NDCG@10): {summary['sasrec_over_popularity']}\n", flush=True)
    skip = set(args.skip.split(","))
    if "cold" not in skip:
        report["cold_start"] = cold_start(ws, ratings, table, tuned_random or {"als": {}, "ease": {}})
        print(
            "cold start: content / random Recall@10 = "
            f"{report['cold_start']['content_over_random_recall@10']}"
        )
    if "serve" not in skip and "random" in args.protocols.split(","):
        run_now = [r for r in report["protocols"]["random"]["rows"] if r["model"].split()[-1] in models]
        best_model = max(run_now, key=lambda r: r[f"ndcg@{K}"])["model"].split()[-1]
        serving = serve_latency(ws, f"ml-{best_model}-random", ratings, 400 if args.quick else 4000)
        report["serving"] = serving
        print(
            f"serving {serving['model']}: top-{K} of {serving['catalogue']} movies, "
            f"{serving['clients']} clients, "
            f"{serving['requests']} requests: p50 {serving['p50_ms']} ms, p99 {serving['p99_ms']} ms, "
            f"{serving['req_per_s']} req/s; errors {serving['errors']}, seen items returned "
            f"{serving['seen_returned']}, wrong cold-start flags {serving['cold_start_wrong']}"
        )
    if "clicks" not in skip and "random" in args.protocols.split(","):
        report["clicks"] = clicks = click_learning(ws, ratings, tuned_random.get("als", {}), args.quick)
        print(
            f"clicks: {clicks['clicks_posted']} posted, adapt: {clicks['decision']}; "
            + "; ".join(clicks["reasons"])
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


def _keys() -> list[str]:
    return [
        f"ndcg@{K}",
        f"recall@{K}",
        f"hr@{K}",
        f"map@{K}",
        "mrr",
        "coverage",
        "popularity_bias",
        "train_seconds",
    ]


if __name__ == "__main__":
    main()
