"""The encoders of dense indexes: a zoo alias (`minilm`, the default), a local folder or a
Hugging Face encoder id, loaded once per process (a few at a time) and called on lists of
texts, giving L2-normalised float32 rows."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # tokens of a passage or query the encoder reads (MiniLM was trained on 256)
CACHED = 2

_CACHE: OrderedDict[str, Encoder] = OrderedDict()
_LOCK = threading.Lock()


class Encoder:
    def __init__(self, name: str, artifacts_dir: Path | None) -> None:
        from llmos.models.llm_classifier import SentenceEmbedder
        from llmos.models.zoo import resolve_model

        self.name = name
        self.embedder = SentenceEmbedder(
            resolve_model(name, artifacts_dir), max_length=MAX_TOKENS, batch_size=32
        )
        self.lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self.lock:
            vectors = self.embedder(list(texts))
        return vectors.float().numpy().astype(np.float32, copy=False)


def encoder_for(name: str, artifacts_dir: Path | None = None) -> Encoder:
    with _LOCK:
        if name in _CACHE:
            _CACHE.move_to_end(name)
            return _CACHE[name]
    encoder = Encoder(name, artifacts_dir)
    with _LOCK:
        _CACHE[name] = encoder
        while len(_CACHE) > CACHED:
            _CACHE.popitem(last=False)
    return encoder
