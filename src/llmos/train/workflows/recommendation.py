"""The `recommendation` task: interactions in, a ranking of every item per user out.

Same shape as every workflow: the `interactions` driver checks and indexes the rows,
the spec's evaluation protocol splits them (`train.ranking.split`), the chosen model
(`models.recommenders`) learns on the training part (torch models through the one loop,
`train.loop.fit`), the test part is ranked over the whole catalogue with seen items
filtered (`train.ranking.evaluate`), and, with `refit`, the model learns again on every
interaction before the folder is written. A separate `data.test` dataset replaces the
protocol's split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.interactions import Interactions, InteractionsDriver, read_item_table
from llmos.spec.tasks import Recommendation
from llmos.store.datasets import get_dataset, load_frame
from llmos.train.ranking import evaluate, histories, split
from llmos.train.workflow import RunResult, TrainJob, Workflow, register_workflow, write_report


@register_workflow
class RecommendationWorkflow(Workflow):
    rules = Recommendation

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return run_recommendation(job)


def _loop(job: TrainJob) -> Callable[..., list[dict[str, float]]]:
    """The one training loop, as `models.recommenders.Loop`."""
    from llmos.train.device import resolve_placement
    from llmos.train.loop import LoopSettings, Rows, fit

    placement = resolve_placement(job.spec.train.device, "fp32")

    def loop(
        module: Any, collate: Any, objective: Any, rows: list[Any], epochs: int, lr: float, batch_size: int
    ) -> list[dict[str, float]]:
        settings = LoopSettings(
            epochs=epochs,
            batch_size=batch_size,
            eval_batch_size=batch_size,
            lr=lr,
            head_lr=lr,
            schedule="constant",
            warmup=0.0,
            weight_decay=0.0,
            max_grad_norm=job.spec.train.max_grad_norm,
            gradient_accumulation=1,
            group_by_length=False,
            seed=job.spec.train.seed,
        )
        data = Rows(rows, [1] * len(rows), None)
        return fit(module, collate, objective, data, settings, placement, progress=job.progress).history

    return loop


def model_settings(job: TrainJob) -> dict[str, Any]:
    """The recommender's settings: the spec's `recommendation` section and, for torch
    models, epochs, learning rate and batch size (the spec's `train` where it sets them)."""
    from llmos.models.recommenders import RECOMMENDERS

    spec, rec = job.spec, job.spec.rec
    settings = rec.model_dump(exclude={"evaluation", "items", "refit"}, mode="json")
    chosen = spec.train.model_fields_set
    for key, value in RECOMMENDERS[rec.model].defaults.items():
        settings[key] = getattr(spec.train, key) if key in chosen and getattr(spec.train, key) else value
    settings["seed"] = spec.train.seed
    return settings


def _matrix(data: Interactions, n_users: int, n_items: int) -> Any:
    from llmos.models.recommenders import user_item_matrix

    return user_item_matrix(data.users, data.items, data.weights, n_users, n_items)


def train_recommender(
    job: TrainJob,
    data: Interactions,
    n_users: int,
    n_items: int,
    settings: dict[str, Any],
    table: pd.DataFrame | None = None,
    items: Sequence[str] = (),
) -> tuple[Any, float]:
    from llmos.models.recommenders import RECOMMENDERS

    model = RECOMMENDERS[settings["model"]](n_users, n_items, settings)
    started = time.perf_counter()
    if model.reads_items and table is not None and job.spec.rec.items is not None:
        model.use_items(table, job.spec.rec.items.model_dump(), items)
    model.fit(_matrix(data, n_users, n_items), histories(data, n_users), _loop(job), job.progress)
    return model, time.perf_counter() - started


def _item_table(job: TrainJob, driver: InteractionsDriver) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    items = job.spec.rec.items
    if items is None:
        return None, {}
    dataset = get_dataset(job.store, items.data)
    columns = list(dict.fromkeys([*items.text, *items.category, *items.number]))
    table, report = read_item_table(
        load_frame(job.store, dataset), items.id, columns, set(driver.items), f"dataset {dataset.ref}"
    )
    job.progress.log(
        f"item table {dataset.ref}: {report['items']} items, {report['unknown_items']} ids no interaction "
        f"names (ranked as new items), {report['items_without_features']} interacted items without a row"
    )
    return table, {"dataset": dataset.ref, **report}


def run_recommendation(job: TrainJob) -> RunResult:
    from llmos.models.kinds.recommender import RecommenderKind
    from llmos.models.recommenders import save_folder

    spec, prepared, rec = job.spec, job.prepared, job.spec.rec
    driver = InteractionsDriver.from_spec(spec.inputs[0])
    rows = driver.read(load_frame(job.store, prepared.train_ds), prepared.train_source)
    test_rows = None
    if prepared.test_ds is not None:
        test_rows = driver.read(load_frame(job.store, prepared.test_ds), prepared.test_source)
    driver.fit(rows if test_rows is None else pd.concat([rows, test_rows], ignore_index=True))
    table, table_report = _item_table(job, driver)
    if table is not None:
        driver.add_items(sorted(set(table.index) - set(driver.item_index)))  # items nobody touched yet
    data = driver.arrays(rows)
    protocol = rec.evaluation
    if test_rows is not None:
        train, test = data, driver.arrays(test_rows)
        record: dict[str, Any] = {"protocol": "dataset", "test": prepared.test_source}
    else:
        mask, record = split(data, protocol.protocol, protocol.test, protocol.seed)
        train, test = data.take(~mask), data.take(mask)
    if len(test) == 0:
        raise DataError(
            f"{prepared.train_source}: no test interactions under protocol {protocol.protocol!r} "
            "(every user needs at least two interactions)"
        )
    n_users, n_items = len(driver.users), len(driver.items)
    settings = model_settings(job)
    job.progress.log(
        f"training {spec.name}: {rec.model} on {len(train)} interactions of {n_users} users, {n_items} items"
    )
    model, seconds = train_recommender(job, train, n_users, n_items, settings, table, driver.items)
    job.progress.log(f"ranking {len(test)} held-out interactions over {n_items} items")
    metrics: dict[str, Any] = evaluate(model.scores, train, test, n_users, n_items, protocol.k)
    history = model.history
    metrics.update(
        model=rec.model,
        split=record,
        data=data.report,
        users=n_users,
        items=n_items,
        train_seconds=round(seconds, 2),
        **({"item_table": table_report} if table_report else {}),
    )
    full = data if test_rows is None else _join(data, test)
    if rec.refit:
        job.progress.log("training again on every interaction")
        model, refit_seconds = train_recommender(job, full, n_users, n_items, settings, table, driver.items)
        metrics["refit_seconds"] = round(refit_seconds, 2)
    folder = job.run_dir / "model"
    config = {
        "kind": RecommenderKind.name,
        "task": spec.task,
        "base_model": rec.model,
        "method": "full",
        "recommender": settings,
        "input": driver.state(),
        "refit": rec.refit,
        "item_separator": rec.items.separator if rec.items else None,
    }
    seen = full if rec.refit else train  # what the registered model knows each user has seen
    save_folder(folder, model, config, driver.users, driver.items, histories(seen, n_users), table)
    write_report(folder, spec, metrics, history, f"{spec.name} ({rec.model})")
    return folder, metrics, history, seconds


def _join(a: Interactions, b: Interactions) -> Interactions:
    times = None if a.times is None or b.times is None else np.concatenate([a.times, b.times])
    return Interactions(
        np.concatenate([a.users, b.users]),
        np.concatenate([a.items, b.items]),
        np.concatenate([a.weights, b.weights]),
        times,
        a.report,
    )


__all__: Sequence[str] = ["RecommendationWorkflow", "run_recommendation", "train_recommender"]
