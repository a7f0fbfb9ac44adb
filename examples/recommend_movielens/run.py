"""A movie recommender over MovieLens (latest-small), end to end through the SDK.

Reads the ratings and movie titles from ../shared/data (nothing is copied into the
repository), trains the ALS spec beside this file, deploys it, and asks for a known
user's top 10 (their rated movies never come back), a session of recent movies for an
anonymous visitor, a genre-filtered list, and a stranger's (the cold-start answer).

    python examples/recommend_movielens/run.py [--home /tmp/movies-ws]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import yaml

import llmos

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "movielens-latest-small"


def show(title: str, answer: Any) -> None:
    print(f"\n{title}{' (cold start)' if answer.cold_start else ''}")
    for n, row in enumerate(answer.items, 1):
        features = row.features or {}
        print(f"{n:3}. {features.get('title', row.item):60} {features.get('genres', '')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default=tempfile.mkdtemp(prefix="movies-"))
    args = parser.parse_args()
    ws = llmos.Workspace(args.home)
    ws.init()
    ws.import_dataset(DATA / "ratings.csv", "ml-ratings")
    ws.import_dataset(DATA / "movies.csv", "ml-movies")
    outcome = ws.train(yaml.safe_load((HERE / "als.yaml").read_text()))
    m = outcome.metrics
    print(
        f"{outcome.model.ref}: NDCG@10 {m['ndcg@10']}, Recall@10 {m['recall@10']}, coverage {m['coverage']}"
    )
    ws.deploy(outcome.model.ref, "movies")
    show("user 1's top 10", ws.recommend("movies", user="1", k=10))
    toy_story, jumanji = "1", "2"
    show("after Toy Story and Jumanji", ws.recommend("movies", items=[toy_story, jumanji], k=10))
    show(
        "user 1, documentaries only", ws.recommend("movies", user="1", k=5, filters={"genres": "Documentary"})
    )
    show("someone new", ws.recommend("movies", user="new-visitor", k=5))


if __name__ == "__main__":
    main()
