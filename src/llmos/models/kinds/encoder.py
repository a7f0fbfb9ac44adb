"""`encoder`: a pretrained sentence encoder (a zoo alias such as `minilm`, a folder or a
hub id) served for `/v1/embeddings` (`models.llm_classifier.SentenceEmbedder`); it is
also what classifiers and fusion models are built on. Not trained by llmos as such."""

from __future__ import annotations

from llmos.models.kinds import ModelKind, register_kind


@register_kind
class EncoderKind(ModelKind):
    name = "encoder"
    deployment = "embedding"
    predicts = False

    @classmethod
    def use_instead(cls) -> str:
        return "deploy it for /v1/embeddings"
