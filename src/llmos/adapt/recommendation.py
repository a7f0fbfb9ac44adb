"""`llmos adapt` for a deployed recommender: clicks on served recommendations (rows of the
model's user and item columns) are learnt, and the same evaluation gate decides.

The clicks come as rows of a dataset (`--data`), or through the feedback route: a
server logs every item it recommends, and a click is a feedback event naming the served
request and the clicked item (`label`); adapt reads those since its last decision. The
clicks are split per user (a seeded share held out, as the `random` protocol does);
the candidate is the deployed model's type and settings trained again on what the parent
learnt from (its training split, rebuilt from the recorded dataset and seed, or every
interaction when it was refit) plus the clicks kept for training. The gate compares the
two on the held-out clicks (NDCG@k, full ranking, each model's seen items filtered): the
candidate must rank them better, and lose at most `tolerance` points of NDCG@k on the
parent's own test split when it has one (less the interactions that are now clicks: the
candidate has seen those, so they would count against it). Only models without a torch loop (popularity,
itemknn, als, ease, content) are adapted for now.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from llmos.adapt.continual import AdaptOutcome, AdaptSettings
from llmos.core.errors import DataError, UsageError
from llmos.core.progress import Progress
from llmos.store.db import Store

CLICKED = {"1", "1.0", "true", "yes", "click", "clicked"}


def _clicks(rows: pd.DataFrame, config: dict[str, Any], model: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """User and item indices of the click rows; rows of unknown users or items are counted."""
    columns = {"user": config["input"]["user"], "item": config["input"]["item"]}
    if "request_id" in rows.columns and "items" in rows.columns:  # clicks through the feedback route
        rows = pd.DataFrame({"user": rows["user"], "item": rows["label"]})
    found = {}
    for what, column in columns.items():
        name = column if column in rows.columns else what
        if name not in rows.columns:
            raise DataError(
                f"click rows: {what} column {column!r} not found; "
                f"columns are {', '.join(map(str, rows.columns))}"
            )
        found[what] = rows[name].astype(str).str.strip()
    keep = np.ones(len(rows), bool)
    if "label" in rows.columns:
        keep = rows["label"].astype(str).str.strip().str.lower().isin(CLICKED).to_numpy()
    users = found["user"].map(model.user_index)
    items = found["item"].map(model.item_index)
    known = keep & users.notna().to_numpy() & items.notna().to_numpy()
    return users[known].to_numpy(np.int32), items[known].to_numpy(np.int32), int((keep & ~known).sum())


def _parent_data(store: Store, parent: Any, config: dict[str, Any], loaded: Any) -> tuple[Any, Any]:
    """(what the parent trained on, its test split or None), over its vocabularies."""
    from llmos.modalities.interactions import InteractionsDriver
    from llmos.spec import parse_spec
    from llmos.store.datasets import get_dataset_by_id, load_frame
    from llmos.train.ranking import split

    spec = parse_spec(parent.spec, f"model {parent.ref}")
    state = {k: v for k, v in config["input"].items() if k not in ("type", "column")}
    driver = InteractionsDriver(users=list(loaded.users), items=list(loaded.items), **state)
    frame = load_frame(store, get_dataset_by_id(store, parent.train_dataset_id))
    data = driver.arrays(driver.read(frame, f"model {parent.ref}'s training data"))
    if config.get("refit") or parent.test_dataset_id is not None:
        return data, None
    protocol = spec.rec.evaluation
    mask, _ = split(data, protocol.protocol, protocol.test, protocol.seed)
    return data.take(~mask), data.take(mask)


def _with(data: Any, users: np.ndarray, items: np.ndarray) -> Any:
    from llmos.modalities.interactions import Interactions

    weight = float(np.median(data.weights)) if len(data) else 1.0  # a click counts as a typical rating
    times = None if data.times is None else np.concatenate([data.times, np.full(len(users), np.inf)])
    return Interactions(
        np.concatenate([data.users, users]),
        np.concatenate([data.items, items]),
        np.concatenate([data.weights, np.full(len(users), weight, np.float32)]),
        times,
        data.report,
    )


def adapt_recommender(
    store: Store,
    deployment: str,
    feedback: pd.DataFrame,
    settings: AdaptSettings,
    progress: Progress,
    *,
    job_id: int | None = None,
    actor: str = "",
) -> AdaptOutcome:
    from llmos.modalities.interactions import Interactions
    from llmos.models.build import read_model_config
    from llmos.models.recommenders import RECOMMENDERS, RecommenderModel, save_folder, user_item_matrix
    from llmos.spec import parse_spec
    from llmos.store.adaptation import record_decision
    from llmos.store.deployments import get_deployment
    from llmos.store.models import get_model, model_folder, register_model
    from llmos.train.ranking import evaluate, histories
    from llmos.train.run import new_run_dir

    parent = get_model(store, get_deployment(store, deployment).model)
    folder = model_folder(store, parent)
    config = read_model_config(folder)
    name = config["recommender"]["model"]
    if RECOMMENDERS[name].defaults:  # trained by the torch loop
        raise UsageError(
            f"model {parent.ref} ({name}): adapt supports popularity, itemknn, als, ease, content"
        )
    loaded = RecommenderModel(folder, config)
    users, items, unknown = _clicks(feedback, config, loaded)
    rng = np.random.default_rng(settings.seed)
    held = np.zeros(len(users), bool)
    for u in np.unique(users):
        rows = np.flatnonzero(users == u)
        n = min(len(rows) - 1, round(len(rows) * settings.holdout))
        if n > 0:
            held[rng.choice(rows, n, replace=False)] = True
    if not held.any():
        raise UsageError(
            f"deployment {deployment!r}: {len(users)} clicks of known users and items leave none held out "
            "for the gate; collect more (at least two clicks of a user)"
        )
    base, old_test = _parent_data(store, parent, config, loaded)
    train = _with(base, users[~held], items[~held])
    clicks = Interactions(users[held], items[held], np.ones(int(held.sum()), np.float32), None)
    n_users, n_items, k = len(loaded.users), len(loaded.items), 10
    progress.log(
        f"adapting {parent.ref} for {deployment}: {int((~held).sum())} clicks to train, {int(held.sum())} "
        f"held out, {unknown} of unknown users or items left out"
    )
    candidate = RECOMMENDERS[name](n_users, n_items, config["recommender"])
    if candidate.reads_items:
        candidate.features = loaded.model.features  # type: ignore[attr-defined]
    candidate.fit(
        user_item_matrix(train.users, train.items, train.weights, n_users, n_items), histories(train, n_users)
    )

    def ndcg(score: Any, seen: Any, test: Any) -> float:
        return float(evaluate(score, seen, test, n_users, n_items, k)[f"ndcg@{k}"])

    parent_metrics = {"feedback_ndcg": ndcg(loaded.model.scores, base, clicks)}
    candidate_metrics = {"feedback_ndcg": ndcg(candidate.scores, train, clicks)}
    old, new = parent_metrics["feedback_ndcg"], candidate_metrics["feedback_ndcg"]
    promote = new > old
    verdict = "(better)" if promote else "(not better: must rise)"
    reasons = [f"held-out clicks NDCG@{k} {old:.4f} -> {new:.4f} {verdict}"]
    if old_test is not None:
        # the parent's test rows that are now clicks the candidate trains on would count
        # against it (seen items are filtered): both models are ranked on the rest
        clicked = set(zip(users.tolist(), items.tolist()))
        rest = np.array(
            [(u, i) not in clicked for u, i in zip(old_test.users.tolist(), old_test.items.tolist())]
        )
        old_test = old_test.take(rest)
        parent_metrics["original_ndcg"] = old = ndcg(loaded.model.scores, base, old_test)
        candidate_metrics["original_ndcg"] = new = ndcg(candidate.scores, train, old_test)
        kept = 100 * new >= 100 * old - settings.tolerance
        promote = promote and kept
        verdict = (
            f"(within {settings.tolerance:g} points)"
            if kept
            else f"(dropped more than {settings.tolerance:g} points)"
        )
        reasons.append(f"original test NDCG@{k} {old:.4f} -> {new:.4f} {verdict}")
    lineage = {
        "parent": parent.ref,
        "deployment": deployment,
        "click_rows": len(feedback),
        "clicks": len(users),
        "held_out_clicks": int(held.sum()),
        "unknown_rows": unknown,
        "settings": asdict(settings),
    }
    metrics = {"parent": parent_metrics, "candidate": candidate_metrics}
    spec = parse_spec(parent.spec, f"model {parent.ref}")
    run_dir = new_run_dir(store, spec)
    try:
        save_folder(
            run_dir / "model",
            candidate,
            config,
            loaded.users,
            loaded.items,
            histories(train, n_users),
            loaded.table,
        )
        registered = register_model(
            store,
            name=parent.name,
            task=parent.task,
            base_model=parent.base_model,
            method=parent.method,
            spec=dict(parent.spec),
            folder=run_dir / "model",
            train_dataset_id=parent.train_dataset_id,
            test_dataset_id=parent.test_dataset_id,
            split={**parent.split, "adapt": lineage},
            metrics={**parent.metrics, "feedback_ndcg": candidate_metrics["feedback_ndcg"]},
            train_seconds=0.0,
            job_id=job_id,
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    decision = "promote" if promote else "reject"
    record_decision(
        store,
        deployment,
        decision=decision,
        candidate=registered.ref,
        parent=parent.ref,
        reasons=reasons,
        metrics={**metrics, "feedback_rows": len(feedback)},
        last_feedback_id=int(feedback["feedback_id"].max()) if "feedback_id" in feedback.columns else None,
        job_id=job_id,
        actor=actor,
    )
    progress.log(f"{decision} {registered.ref}: " + "; ".join(reasons))
    return AdaptOutcome(deployment, parent.ref, registered.ref, decision, reasons, metrics, lineage)
