"""Recommendations from a deployed recommender: `recommend` (the route
`POST /v1/deployments/{name}/recommend`, `llmos recommend`, `Workspace.recommend`).

A known user gets the model's ranking with every item they have interacted with left
out; an anonymous session names its recent items instead; anyone else (an unknown user,
no items) gets the cold-start answer, the popularity ranking, marked `cold_start`. The
loaded model is kept per process (a few, most recently used first), and a server
resolves the deployment through its runtime's short cache, so a request costs one
scoring pass over the catalogue. A server logs what it served (`_log`), so that a click
comes back through the feedback route as the request id and the clicked item, and
`llmos adapt` learns from it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from pydantic import Field

from llmos.core.errors import NotFoundError, UsageError
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result

CACHE_SIZE = 8
MAX_K = 1000
_cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
_lock = threading.Lock()


class RecommendedItem(Result):
    item: str = Field(description="The item id")
    score: float = Field(description="The model's score (higher is better)")
    features: dict[str, Any] | None = Field(None, description="The item's row of the item table")


class Recommendations(Result):
    request_id: str | None = Field(
        None, description="Names this answer in feedback (a click: the request id and the clicked item)"
    )
    deployment: str
    model: str = Field(description="NAME@V of the model that answered")
    user: str | None = None
    cold_start: bool = Field(description="The popularity answer: an unknown user and no known recent items")
    items: list[RecommendedItem]


def _target(ctx: Context, name: str) -> tuple[str, Any, Any]:
    """The deployment's model ref, kind name and target (its folder and config)."""
    from llmos.serve.targets import resolve_target
    from llmos.store.deployments import DEPLOYMENT_KINDS, find_deployment

    if ctx.runtime is not None:
        row, target = ctx.runtime.resolve(name)
    else:
        row = find_deployment(ctx.store, name)
        if row is None:
            raise NotFoundError(
                f"deployment {name!r} not found; create it with `llmos deploy MODEL --name {name}`"
            )
        target = None
    serving = DEPLOYMENT_KINDS[row.kind]
    if not serving.recommends:
        raise UsageError(
            f"deployment {name!r} serves a {row.kind} model ({row.model}), not a recommender; "
            f"use {serving.route.format(name=name)}"
        )
    return row.model, row.kind, target or resolve_target(ctx.store, row)


def loaded_recommender(ctx: Context, ref: str, target: Any) -> Any:
    from llmos.models.kinds import kind_of

    key = (str(ctx.store.settings.home), ref)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    kind = kind_of(target.config)
    if not hasattr(kind, "load_recommender"):
        raise UsageError(f"{ref} is a {kind.name} model, not a recommender")
    model = kind.load_recommender(target.folder, target.config)
    with _lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


@operation("predict", deployment="deployment")
def recommend(
    ctx: Context,
    deployment: str,
    user: str | None = None,
    items: list[str] | None = None,
    k: int = 10,
    exclude: list[str] | None = None,
    filters: dict[str, Any] | None = None,
) -> Recommendations:
    """The top `k` items of deployment `deployment` for `user`, or for an anonymous
    session of recent `items`; never an item the user has seen, nor one in `exclude`;
    `filters` keep items whose item-table column holds one of the given values."""
    if not 1 <= k <= MAX_K:
        raise UsageError(f"k: give a number of items from 1 to {MAX_K}, not {k}")
    ref, _, target = _target(ctx, deployment)
    model = loaded_recommender(ctx, ref, target)
    answer = model.recommend(user, items or [], k, exclude or [], filters)
    request_id = _log(ctx, deployment, ref, user, items or [], answer["items"])
    return Recommendations(
        request_id=request_id,
        deployment=deployment,
        model=ref,
        user=user,
        cold_start=answer["cold_start"],
        items=[RecommendedItem(**row) for row in answer["items"]],
    )


def _log(
    ctx: Context, deployment: str, ref: str, user: str | None, items: list[str], served: list[dict[str, Any]]
) -> str | None:
    """A server logs every served item (one row each, by rank, the item as its label) off
    the request path, so that a click names the request and the item; local calls have
    no request log and no request id."""
    log = getattr(ctx.runtime, "request_log", None)
    if log is None:
        return None
    from llmos.serve.requestlog import new_request_id
    from llmos.store.feedback import RequestRecord

    request_id = new_request_id()
    inputs = {"user": user, "items": items}
    log.add(
        [
            RequestRecord(request_id, rank, deployment, ref, inputs, row, row["item"], row["score"])
            for rank, row in enumerate({"item": r["item"], "score": r["score"]} for r in served)
        ]
    )
    return request_id
