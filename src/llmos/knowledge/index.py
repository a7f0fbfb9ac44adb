"""A collection's index: its chunks, a dense matrix and a sparse BM25 index, searched
alone or fused.

- dense: L2-normalised embeddings (float32, one row per chunk) from the collection's
  encoder; exact search is one matrix-vector product with numpy (at 100,000 x 384 it
  costs a few milliseconds, below what an approximate index would save).
- sparse: BM25 (Lucene's variant, k1 = 1.5, b = 0.75) with bm25s over lower-cased word
  tokens without English stop words, Snowball-stemmed (snowballstemmer, the Porter2
  English stemmer: "cards", "charged", "charging" -> "card", "charg"); stemming raised
  BM25's nDCG@10 on the Banking77 FAQ set from 0.540 to 0.592 and Recall@5 from 0.496 to
  0.546 (benchmarks/bench_knowledge.py). Indexes saved before stemming keep their
  unstemmed tokens and are queried the same way. Each chunk's tokens are kept, so adding
  or deleting documents re-derives the BM25 matrix from them (no re-tokenising) and
  embeds only the new chunks: no full rebuild.
- hybrid: reciprocal rank fusion (`rrf`: sum of 1 / (60 + rank) over the two rankings,
  each cut at `depth`; a `weight` other than 0.5 scales the dense list's terms by
  2 x weight and BM25's by 2 x (1 - weight)) or `weighted` (weight x dense +
  (1 - weight) x BM25, each min-max scaled over the candidates).

Metadata filters select chunks before ranking: `{field: value}` or `{field: [values]}`
over source, title, kind and each chunk's metadata (a FAQ row's columns, a PDF's page).
An index is saved as three blobs (chunks.parquet, embeddings.npy, bm25.npz) and loaded
from their bytes, so it stays encrypted at rest in an encrypted workspace.
"""

from __future__ import annotations

import functools
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmos.core.errors import UsageError
from llmos.knowledge.chunking import Chunk

MODES = ("hybrid", "dense", "bm25")
FUSIONS = ("rrf", "weighted")
RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)
Encode = Callable[[Sequence[str]], np.ndarray]


def _stopwords() -> frozenset[str]:
    """scikit-learn's English list (318 words: my, where, can, ...) and bm25s' own; the
    short Lucene list alone leaves pronouns that match every question."""
    from bm25s.stopwords import STOPWORDS_EN
    from sklearn.feature_extraction._stop_words import ENGLISH_STOP_WORDS

    return frozenset(STOPWORDS_EN) | ENGLISH_STOP_WORDS | {"t", "s", "don", "doesn", "isn", "hasn", "didn"}


_STOP: frozenset[str] | None = None


STEMMED = "snowball-english"  # the tokenizer name saved with an index (absent: unstemmed)


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


@functools.cache
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def tokenize(text: str, stem: bool = True) -> list[str]:
    """BM25 tokens: lower-cased words without stop words, stemmed unless `stem` is False."""
    global _STOP
    if _STOP is None:
        _STOP = _stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return [_stem(w) for w in words] if stem else words


@dataclass
class Hit:
    row: int
    score: float
    dense: float | None
    bm25: float | None


class KnowledgeIndex:
    """Chunks with their dense and sparse indexes (`embeddings` is None without an encoder)."""

    def __init__(
        self,
        chunks: list[Chunk],
        tokens: list[list[str]],
        embeddings: np.ndarray | None,
        stemmed: bool = True,
    ) -> None:
        self.chunks = chunks
        self.tokens = tokens
        self.embeddings = embeddings
        self.stemmed = stemmed  # False for an index saved before stemming
        self._columns: dict[str, np.ndarray] = {}
        self.bm25 = _build_bm25(tokens)

    def __len__(self) -> int:
        return len(self.chunks)

    @classmethod
    def build(cls, chunks: list[Chunk], encode: Encode | None) -> KnowledgeIndex:
        tokens = [tokenize(f"{c.title} {c.text}") for c in chunks]
        embeddings = _embed(encode, chunks) if encode is not None else None
        return cls(chunks, tokens, embeddings)

    def added(self, chunks: list[Chunk], encode: Encode | None, replace: set[str]) -> KnowledgeIndex:
        """A new index with `chunks` added (documents whose source is in `replace` dropped
        first); only the new chunks are embedded."""
        kept = self.without(replace) if replace else self
        tokens = [tokenize(f"{c.title} {c.text}", self.stemmed) for c in chunks]
        embeddings = None
        if kept.embeddings is not None:
            assert encode is not None
            embeddings = np.concatenate([kept.embeddings, _embed(encode, chunks)])
        return KnowledgeIndex(kept.chunks + chunks, kept.tokens + tokens, embeddings, self.stemmed)

    def without(self, sources: set[str]) -> KnowledgeIndex:
        keep = [i for i, c in enumerate(self.chunks) if c.source not in sources]
        embeddings = self.embeddings[keep] if self.embeddings is not None else None
        return KnowledgeIndex(
            [self.chunks[i] for i in keep], [self.tokens[i] for i in keep], embeddings, self.stemmed
        )

    # searching

    def _column(self, name: str) -> np.ndarray:
        if name not in self._columns:
            if name in ("source", "title", "kind"):
                values = [getattr(c, name) for c in self.chunks]
            else:
                values = [c.metadata.get(name) for c in self.chunks]
            column = np.empty(len(values), dtype=object)
            column[:] = [None if v is None else str(v) for v in values]
            self._columns[name] = column
        return self._columns[name]

    def mask(self, filters: dict[str, Any] | None) -> np.ndarray | None:
        if not filters:
            return None
        mask = np.ones(len(self.chunks), dtype=bool)
        for name, wanted in filters.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            mask &= np.isin(self._column(name), [str(v) for v in values])
        return mask

    def bm25_scores(self, query: str) -> np.ndarray:
        ids = self.bm25.get_tokens_ids(tokenize(query, self.stemmed))
        if not ids or not len(self.chunks):
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self.bm25.get_scores_from_ids(ids), dtype=np.float32)

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        assert self.embeddings is not None
        return self.embeddings @ vector.astype(np.float32)

    def search(
        self,
        query: str,
        vector: np.ndarray | None,
        *,
        k: int = 10,
        mode: str = "hybrid",
        fusion: str = "rrf",
        weight: float = 0.5,
        filters: dict[str, Any] | None = None,
        depth: int = 100,
    ) -> list[Hit]:
        """The best `k` chunks for `query` (`vector`: its embedding, for dense and hybrid)."""
        if mode not in MODES:
            raise UsageError(f"search mode {mode!r}: use one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise UsageError(f"fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
        if not 0.0 <= weight <= 1.0:
            raise UsageError(f"weight must be between 0 and 1 (the dense share), not {weight}")
        mask = self.mask(filters)
        allowed = len(self.chunks) if mask is None else int(mask.sum())
        if allowed == 0:
            return []
        sparse = self.bm25_scores(query) if mode in ("hybrid", "bm25") else None
        dense = self.dense_scores(vector) if mode in ("hybrid", "dense") and vector is not None else None
        if mode != "bm25" and dense is None:
            raise UsageError("dense search needs the query's embedding")
        if mode == "bm25":
            assert sparse is not None
            hits = _top(sparse, mask, k, positive=True)
            return [Hit(int(i), float(sparse[i]), None, float(sparse[i])) for i in hits]
        assert dense is not None
        if mode == "dense":
            hits = _top(dense, mask, k)
            return [Hit(int(i), float(dense[i]), float(dense[i]), None) for i in hits]
        assert sparse is not None
        depth = max(depth, k)
        dense_top = _top(dense, mask, depth)
        sparse_top = _top(sparse, mask, depth, positive=True)
        candidates = np.unique(np.concatenate([dense_top, sparse_top]))
        if fusion == "rrf":
            fused = np.zeros(len(candidates), dtype=np.float64)
            where = {int(c): j for j, c in enumerate(candidates)}
            # weight 0.5: plain RRF; otherwise each list's terms count 2 x its share
            for ranking, share in ((dense_top, 2 * weight), (sparse_top, 2 * (1 - weight))):
                for rank, row in enumerate(ranking):
                    fused[where[int(row)]] += share / (RRF_K + rank + 1)
        else:
            fused = weight * _minmax(dense[candidates]) + (1 - weight) * _minmax(sparse[candidates])
        order = np.argsort(-fused, kind="stable")[:k]
        return [
            Hit(
                int(candidates[j]), float(fused[j]), float(dense[candidates[j]]), float(sparse[candidates[j]])
            )
            for j in order
        ]

    # persistence

    def to_blobs(self) -> dict[str, bytes]:
        import pandas as pd

        frame = pd.DataFrame(
            {
                "source": [c.source for c in self.chunks],
                "title": [c.title for c in self.chunks],
                "kind": [c.kind for c in self.chunks],
                "position": [c.position for c in self.chunks],
                "text": [c.text for c in self.chunks],
                "metadata": [json.dumps(c.metadata, ensure_ascii=False) for c in self.chunks],
                "tokens": [" ".join(t) for t in self.tokens],
            }
        )
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        blobs = {"chunks.parquet": buf.getvalue()}
        if self.embeddings is not None:
            out = io.BytesIO()
            np.save(out, self.embeddings, allow_pickle=False)
            blobs["embeddings.npy"] = out.getvalue()
        scores = self.bm25.scores
        arrays: dict[str, np.ndarray] = {
            "data": scores["data"],
            "indices": scores["indices"],
            "indptr": scores["indptr"],
            "num_docs": np.asarray(scores["num_docs"]),
            "vocab": np.frombuffer(json.dumps(self.bm25.vocab_dict).encode(), dtype=np.uint8),
        }
        if self.stemmed:
            arrays["tokenizer"] = np.frombuffer(STEMMED.encode(), dtype=np.uint8)
        out = io.BytesIO()
        np.savez(out, **arrays)  # type: ignore[arg-type]
        blobs["bm25.npz"] = out.getvalue()
        return blobs

    @classmethod
    def from_blobs(cls, blobs: dict[str, bytes]) -> KnowledgeIndex:
        import bm25s
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(blobs["chunks.parquet"]))
        chunks = [
            Chunk(r.source, r.title, r.kind, int(r.position), r.text, json.loads(r.metadata))
            for r in frame.itertuples(index=False)
        ]
        tokens = [t.split() if t else [] for t in frame["tokens"]]
        embeddings = None
        if "embeddings.npy" in blobs:
            embeddings = np.load(io.BytesIO(blobs["embeddings.npy"]), allow_pickle=False)
        index = cls.__new__(cls)
        index.chunks, index.tokens, index.embeddings, index._columns = chunks, tokens, embeddings, {}
        saved = np.load(io.BytesIO(blobs["bm25.npz"]), allow_pickle=False)
        index.stemmed = "tokenizer" in saved.files and saved["tokenizer"].tobytes().decode() == STEMMED
        bm25 = bm25s.BM25()
        bm25.scores = {
            "data": saved["data"],
            "indices": saved["indices"],
            "indptr": saved["indptr"],
            "num_docs": int(saved["num_docs"]),
        }
        bm25.vocab_dict = json.loads(saved["vocab"].tobytes().decode())
        bm25.unique_token_ids_set = set(bm25.vocab_dict.values())
        bm25.nonoccurrence_array = None  # lucene BM25 (the default) scores absent terms 0
        index.bm25 = bm25
        return index


def _embed(encode: Encode, chunks: list[Chunk]) -> np.ndarray:
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(encode([c.text for c in chunks]), dtype=np.float32)


def _build_bm25(tokens: list[list[str]]) -> Any:
    import bm25s

    bm25 = bm25s.BM25()
    # an empty token list per chunk is fine: bm25s keeps an empty token for such chunks
    bm25.index([t or [""] for t in tokens] or [[""]], show_progress=False)
    return bm25


def _top(scores: np.ndarray, mask: np.ndarray | None, k: int, positive: bool = False) -> np.ndarray:
    """Rows of the `k` highest scores (in order), among `mask`, above zero if `positive`."""
    values = scores if mask is None else np.where(mask, scores, -np.inf)
    if positive:
        values = np.where(values > 0, values, -np.inf)
    k = min(k, len(values))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-values, k - 1)[:k] if k < len(values) else np.arange(len(values))
    top = top[np.argsort(-values[top], kind="stable")]
    return top[np.isfinite(values[top])]


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.ones_like(values, dtype=np.float64) if hi > 0 else np.zeros_like(values, dtype=np.float64)
    return (values.astype(np.float64) - lo) / (hi - lo)
