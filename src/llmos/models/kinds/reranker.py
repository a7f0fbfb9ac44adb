"""`reranker`: a cross-encoder, the `classifier` model (encoder + pooling + head) reading
a `text-pair` input (query, passage) jointly, with two outputs (relevant or not).

Saved and loaded exactly as a classifier (its folder names `kind: reranker` and its
`positive_label`); served as a classifier deployment, whose predictions give each pair
the probability of the positive label: the relevance score to sort passages by.
"""

from __future__ import annotations

from typing import Any, ClassVar

from llmos.models.kinds import register_kind
from llmos.models.kinds.classifier import ClassifierKind


@register_kind
class RerankerKind(ClassifierKind):
    name = "reranker"
    priority = 5  # a refinement of `classifier` (asked before it)
    deployment = "classifier"
    optimizable = False  # `--optimize` export reads one text input
    adaptable = False  # `llmos adapt` retrains single-text classifiers for now
    exports: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def claims(cls, config: dict[str, Any]) -> bool:
        return config.get("kind") == cls.name
