"""`recommender`: a model of task: recommendation (popularity, item k-NN, ALS, BPR,
SASRec; `models.recommenders`). It has no `Predictor`: it is served by
`POST /v1/deployments/{name}/recommend` (deployment kind `recommender`), loaded with
`load_recommender`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmos.models.kinds import ModelKind, register_kind


@register_kind
class RecommenderKind(ModelKind):
    name = "recommender"
    deployment = "recommender"
    predicts = False
    has_head = False

    @classmethod
    def use_instead(cls) -> str:
        return "deploy it and call /v1/deployments/{name}/recommend (`llmos recommend`)"

    @classmethod
    def load_recommender(cls, folder: Path, config: dict[str, Any]) -> Any:
        from llmos.models.recommenders import RecommenderModel

        return RecommenderModel(folder, config)
