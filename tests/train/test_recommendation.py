"""Task `recommendation` on small synthetic interactions: every model learns the taste
groups (or, for SASRec, the order), evaluation follows the spec's protocol, bad input is
one line naming what is wrong and registers nothing, and a deployed recommender answers
known users, sessions and strangers (locally, over HTTP and from the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmos.core.errors import DataError, NotFoundError, SpecError, UsageError
from llmos.modalities.interactions import Interactions
from llmos.train.ranking import evaluate, split

GROUPS = 4
MODELS = ("popularity", "itemknn", "als", "bpr", "ease", "sasrec", "content")


def interactions(n_users: int = 48, n_items: int = 40, per_user: int = 8, seed: int = 0) -> pd.DataFrame:
    """Users in 4 taste groups (item % 4); each group walks its items in a fixed cycle, so
    the next item follows from the last one (what a sequential model can learn)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = [i for i in range(n_items) if i % GROUPS == u % GROUPS]
        start = int(rng.integers(len(group)))
        for t in range(per_user):
            item = group[(start + t) % len(group)]
            rows.append(
                {"user": f"u{u}", "item": f"i{item}", "rating": int(rng.integers(3, 6)), "ts": 100 * u + t}
            )
    return pd.DataFrame(rows)


def items_table(n_items: int = 44) -> pd.DataFrame:
    """Four more items than have interactions (cold ones), each with a title and genre."""
    return pd.DataFrame(
        {
            "item": [f"i{i}" for i in range(n_items)],
            "title": [f"film {i}" for i in range(n_items)],
            "genre": [f"g{i % GROUPS}|all" for i in range(n_items)],
        }
    )


def spec(model: str, protocol: str = "leave-last", **rec: object) -> dict:
    train = {"bpr": {"epochs": 30, "batch_size": 64}, "sasrec": {"epochs": 30, "batch_size": 8, "lr": 0.005}}
    if model == "ease":
        rec = {"l2": 1.0, "min_count": 1, **rec}
    if model == "content":
        rec = {"encoder": "tfidf", **rec}
    return {
        "name": f"rec-{model}",
        "task": "recommendation",
        "data": {"train": "clicks"},
        "inputs": [{"user": "user", "item": "item", "rating": "rating", "timestamp": "ts", "scale": [1, 5]}],
        "recommendation": {
            "model": model,
            "factors": 16,
            "evaluation": {"protocol": protocol, "k": 5},
            "items": {"data": "films", "text": ["title"], "category": ["genre"]},
            **rec,
        },
        "train": train.get(model, {}),
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One workspace, every model trained once (leave-last)."""
    from llmos import Workspace

    home = tmp_path_factory.mktemp("rec")
    ws = Workspace(home / "ws")
    ws.init()
    frame = interactions()
    frame = pd.concat([frame, frame.iloc[:3]], ignore_index=True)  # 3 duplicate rows
    frame.to_csv(home / "clicks.csv", index=False)
    items_table().to_csv(home / "films.csv", index=False)
    ws.import_dataset(home / "clicks.csv", "clicks")
    ws.import_dataset(home / "films.csv", "films")
    # the torch models skip the second fit on every interaction (time)
    metrics = {m: ws.train(spec(m, refit=m in ("itemknn", "als"))).metrics for m in MODELS}
    return ws, metrics, home


def test_every_model_beats_popularity_on_the_taste_groups(trained):
    _, metrics, _ = trained
    base = metrics["popularity"]["ndcg@5"]
    for model in ("itemknn", "als", "bpr", "ease", "sasrec", "content"):
        assert metrics[model]["ndcg@5"] > 2 * base + 0.1, (model, metrics[model]["ndcg@5"], base)
    # SASRec reads the order: the next item of the cycle is its first guess
    assert metrics["sasrec"]["hr@5"] > 0.8


def test_the_report_holds_the_metrics_and_the_data_checks(trained):
    ws, metrics, _ = trained
    m = metrics["als"]
    for key in ("ndcg@5", "recall@5", "hr@5", "map@5", "mrr", "coverage", "popularity_bias"):
        assert 0 <= m[key] <= (1 if key != "popularity_bias" else 100), key
    assert m["split"]["protocol"] == "leave-last"
    assert m["test_users"] == 48 and m["split"]["test_rows"] == 48  # one held out per user
    assert m["data"]["duplicates"] == 3 and m["data"]["interactions"] == 48 * 8
    assert m["item_table"]["unknown_items"] == 4  # films without interactions, counted
    assert ws.model("rec-als").metrics["ndcg@5"] == m["ndcg@5"]  # stored with the model


def test_protocols_split_as_the_field_does():
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(20), 10).astype(np.int32)
    items = rng.integers(0, 50, 200).astype(np.int32)
    times = rng.permutation(200).astype(np.float64)
    data = Interactions(users, items, np.ones(200, np.float32), times)
    mask, _ = split(data, "leave-last", 0.25, 0)
    for u in range(20):
        rows = np.flatnonzero(users == u)
        assert mask[rows].sum() == 1 and times[rows][mask[rows]][0] == times[rows].max()
    mask, _ = split(data, "random", 0.25, 0)
    assert all(mask[users == u].sum() == round(10 * 0.25) for u in range(20))
    mask, record = split(data, "temporal", 0.25, 0)
    assert times[mask].min() > times[~mask].max() and record["cut"] > 0


def test_metrics_of_a_perfect_and_a_useless_ranking():
    train = Interactions(np.array([0, 1], np.int32), np.array([0, 1], np.int32), np.ones(2, np.float32), None)
    test = Interactions(np.array([0, 1], np.int32), np.array([2, 3], np.int32), np.ones(2, np.float32), None)

    def perfect(users, histories):
        s = np.zeros((len(users), 6))
        s[np.arange(len(users)), users + 2] = 1  # user 0 -> item 2, user 1 -> item 3
        return s

    def backwards(users, histories):
        return -perfect(users, histories)

    good = evaluate(perfect, train, test, 2, 6, k=1)
    assert good["ndcg@1"] == good["recall@1"] == good["map@1"] == good["mrr"] == 1.0
    bad = evaluate(backwards, train, test, 2, 6, k=1)
    assert bad["hr@1"] == 0 and bad["mrr"] < 0.5


def test_bad_input_is_one_line_and_registers_nothing(trained, tmp_path):
    ws, _, _ = trained
    before = len(ws.models())
    frame = interactions(n_users=8)
    frame.loc[5, "rating"] = 9
    frame.to_csv(tmp_path / "bad.csv", index=False)
    ws.import_dataset(tmp_path / "bad.csv", "bad-ratings")
    with pytest.raises(
        DataError, match=r"1 ratings in column 'rating' are outside the declared scale \[1, 5\]"
    ):
        ws.train({**spec("popularity"), "data": {"train": "bad-ratings"}})
    with pytest.raises(DataError, match="user column 'customer' not found; columns are user, item"):
        bad = spec("popularity")
        bad["inputs"][0]["user"] = "customer"
        ws.train(bad)
    with pytest.raises(SpecError, match="leave-last' needs the interactions' `timestamp` column"):
        no_time = spec("popularity")
        del no_time["inputs"][0]["timestamp"]
        ws.train(no_time)
    pd.concat([items_table(), items_table().iloc[:1]]).to_csv(tmp_path / "twice.csv", index=False)
    ws.import_dataset(tmp_path / "twice.csv", "films-twice")
    with pytest.raises(DataError, match="1 item ids appear twice in column 'item'"):
        ws.train(spec("popularity", items={"data": "films-twice", "text": ["title"]}))
    with pytest.raises(SpecError, match=r"recommendation\.model 'content' reads item features: give"):
        no_items = spec("content")
        del no_items["recommendation"]["items"]
        ws.train(no_items)
    assert len(ws.models()) == before


def test_a_deployed_recommender_answers_users_sessions_and_strangers(trained):
    ws, _, home = trained
    ws.deploy("rec-als", "films")
    seen = set(pd.read_csv(home / "clicks.csv").query("user == 'u1'")["item"])
    answer = ws.recommend("films", user="u1", k=5)
    got = [r.item for r in answer.items]
    assert len(got) == 5 and not seen & set(got) and not answer.cold_start
    assert all(int(i[1:]) % GROUPS == 1 for i in got[:2])  # the 2 of u1's group u1 has not seen
    assert answer.items[0].features == {"title": f"film {got[0][1:]}", "genre": f"g{int(got[0][1:]) % 4}|all"}
    stranger = ws.recommend("films", user="nobody", k=3)
    assert stranger.cold_start and len(stranger.items) == 3
    session = ws.recommend("films", items=["i2", "i6"], k=4)  # group 2's items, folded in
    assert not session.cold_start and {"i2", "i6"}.isdisjoint(r.item for r in session.items)
    ws.deploy("rec-itemknn", "similar")
    session = ws.recommend("similar", items=["i2", "i6"], k=4)
    assert all(int(r.item[1:]) % GROUPS == 2 for r in session.items)
    excluded = ws.recommend("films", user="u1", k=5, exclude=[got[0]])
    assert got[0] not in [r.item for r in excluded.items]
    filtered = ws.recommend("films", user="u1", k=5, filters={"genre": "g3"})
    assert filtered.items and all(r.features["genre"] == "g3|all" for r in filtered.items)
    with pytest.raises(UsageError, match="filters: unknown item column 'year'; columns are title, genre"):
        ws.recommend("films", user="u1", filters={"year": "1999"})
    with pytest.raises(UsageError, match="k: give a number of items from 1 to 1000, not 0"):
        ws.recommend("films", user="u1", k=0)
    with pytest.raises(NotFoundError, match="deployment 'nope' not found"):
        ws.recommend("nope", user="u1")


def test_sasrec_serves_a_session_by_its_order(trained):
    ws, _, _ = trained
    ws.deploy("rec-sasrec", "next")
    # group 0's cycle is i0, i4, i8, ...: after i12, i16 the next one is i20
    answer = ws.recommend("next", items=["i12", "i16"], k=3)
    assert answer.items[0].item == "i20"


def test_the_route_and_the_cli(trained, tiny_model_dir: Path, monkeypatch, capsys):
    from fastapi.testclient import TestClient

    from llmos.api.app import create_app
    from llmos.cli.main import main
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    ws, _, _ = trained
    ws.deploy("rec-bpr", "knn")
    ws.deploy(str(tiny_model_dir), "vectors")  # an embedding deployment: not a recommender
    app = create_app(ServeRuntime(ws.store, ServeConfig(max_wait_ms=1)), open_policy())
    with TestClient(app) as client:
        r = client.post("/v1/deployments/knn/recommend", json={"user": "u2", "k": 4})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "rec-bpr@1" and len(body["items"]) == 4 and not body["cold_start"]
        r = client.post("/v1/deployments/vectors/recommend", json={"user": "u2"})
        assert r.status_code == 422
        assert r.json()["error"]["message"] == (
            "deployment 'vectors' serves a embedding model (" + str(tiny_model_dir) + "), not a "
            "recommender; use /v1/embeddings"
        )
        assert client.post("/v1/deployments/knn/recommend", json={"k": 0}).status_code == 422
        assert client.post("/v1/deployments/gone/recommend", json={"user": "u2"}).status_code == 404
    monkeypatch.setenv("LLMOS_HOME", str(ws.settings.home))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["recommend", "knn", "--user", "u2", "-k", "3"]) == 0
    printed = capsys.readouterr().out
    assert "3 items for user u2 from rec-bpr@1" in printed
    assert main(["recommend", "vectors", "--user", "u2"]) != 0
    assert "not a recommender" in capsys.readouterr().err


def test_only_the_content_model_ranks_items_nobody_has_touched(trained):
    """i40..i43 are in the item table only: the content model ranks them by their genre,
    the collaborative models give them one score for all (no signal)."""
    ws, _, _ = trained
    warm = [f"i{i}" for i in range(40)]
    ws.deploy("rec-content", "by-genre")
    for user, group in (("u1", 1), ("u2", 2), ("u3", 3)):
        answer = ws.recommend("by-genre", user=user, k=4, exclude=warm)
        assert answer.items[0].item == f"i{40 + group}", (user, answer.items)
    ws.deploy("rec-ease", "ease")
    for deployment in ("films", "ease"):  # ALS, EASE
        answer = ws.recommend(deployment, user="u1", k=4, exclude=warm)
        assert len(answer.items) == 4 and len({r.score for r in answer.items}) == 1, deployment


def test_clicks_on_recommendations_adapt_the_recommender_behind_the_gate(trained, tmp_path):
    """Every user starts clicking the next taste group's films: adapt learns it and the
    gate promotes the candidate (it ranks the held-out clicks better); with no tolerance
    for the original test split, which the new taste costs, it is rejected."""
    ws, _, _ = trained
    ws.train({**spec("als", refit=False), "name": "rec-clicks"})
    ws.deploy("rec-clicks", "clicked")
    rows = []
    for u in range(48):
        new = [i for i in range(40) if i % GROUPS == (u + 1) % GROUPS][:4]
        rows += [{"user": f"u{u}", "item": f"i{i}", "label": 1} for i in new]
    pd.DataFrame(rows).to_csv(tmp_path / "clicks.csv", index=False)
    ws.import_dataset(tmp_path / "clicks.csv", "served-clicks")
    strict = ws.adapt("clicked", data="served-clicks", tolerance=0.0)
    assert strict.decision == "reject" and "dropped more than 0 points" in strict.reasons[1]
    assert ws.recommend("clicked", user="u1", k=1).model == "rec-clicks@1"
    result = ws.adapt("clicked", data="served-clicks", tolerance=100.0)
    parent, candidate = result.metrics["parent"], result.metrics["candidate"]
    assert result.decision == "promote", result.reasons
    assert candidate["feedback_ndcg"] > parent["feedback_ndcg"]
    assert result.lineage["held_out_clicks"] == 48  # one of each user's 4 clicks
    served = ws.recommend("clicked", user="u1", k=3)
    assert served.model == result.candidate
    assert any(int(r.item[1:]) % GROUPS == 2 for r in served.items)  # u1's new taste


def test_clicks_through_the_feedback_route_adapt_the_served_recommender(trained):
    """A server logs what it recommends; each user clicks four served films of the next
    taste group (posted to the feedback route as the request id and the clicked item);
    `adapt` with no dataset reads those clicks and the gate promotes the candidate, which
    ranks the held-out clicks better. A click on an item the request did not serve is one
    line (422) and stores nothing."""
    from fastapi.testclient import TestClient

    from llmos.api.app import create_app
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    ws, _, _ = trained
    ws.train({**spec("als", refit=False), "name": "rec-served"})
    ws.deploy("rec-served", "served")
    app = create_app(ServeRuntime(ws.store, ServeConfig(max_wait_ms=1)), open_policy())
    with TestClient(app) as client:
        for u in range(48):
            r = client.post("/v1/deployments/served/recommend", json={"user": f"u{u}", "k": 30})
            assert r.status_code == 200, r.text
            body = r.json()
            served = [row["item"] for row in body["items"]]
            wanted = [i for i in served if int(i[1:]) % GROUPS == (u + 1) % GROUPS][:4]
            assert len(wanted) == 4
            for item in wanted:
                click = {"request_id": body["request_id"], "label": item}
                r = client.post("/v1/deployments/served/feedback", json=click)
                assert r.status_code == 201, r.text
        stray = {"request_id": body["request_id"], "label": "i999"}
        r = client.post("/v1/deployments/served/feedback", json=stray)
        assert r.status_code == 422
        assert r.json()["error"]["message"] == (
            f"label: item 'i999' is not one of the 30 items request {body['request_id']!r} recommended"
        )
    result = ws.adapt("served", tolerance=100.0)
    assert result.decision == "promote", result.reasons
    assert result.lineage["clicks"] == 48 * 4 and result.lineage["held_out_clicks"] == 48
    assert result.metrics["candidate"]["feedback_ndcg"] > result.metrics["parent"]["feedback_ndcg"]
    assert ws.recommend("served", user="u1", k=1).model == result.candidate
