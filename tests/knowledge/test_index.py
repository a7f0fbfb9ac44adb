"""The index: BM25, dense and fused rankings, filters, incremental add and delete, and
the saved form, with a small bag-of-words encoder (the logic does not depend on which
encoder; tests/knowledge/test_collections.py runs the real ones)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pytest

from llmos.core.errors import UsageError
from llmos.knowledge.chunking import Chunk
from llmos.knowledge.index import RRF_K, KnowledgeIndex, tokenize


class BagEncoder:
    """Hashed bag of words, L2-normalised; counts the texts it encodes."""

    def __init__(self, dims: int = 64) -> None:
        self.dims = dims
        self.encoded = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in tokenize(text):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dims] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


TEXTS = {
    "cards.md": ["The new card arrives by post within five days.", "A lost card can be blocked in the app."],
    "fees.md": ["Transfers abroad cost two euros.", "Paying by card abroad costs one percent."],
    "hours.md": ["Branches open at nine and close at five."],
}


def chunks(texts: dict[str, list[str]] = TEXTS) -> list[Chunk]:
    return [
        Chunk(
            source,
            source.removesuffix(".md"),
            "markdown",
            i,
            text,
            {"lang": "en" if source != "hours.md" else "de"},
        )
        for source, items in texts.items()
        for i, text in enumerate(items)
    ]


def ids(index: KnowledgeIndex, hits) -> list[str]:
    return [f"{index.chunks[h.row].source}#{index.chunks[h.row].position}" for h in hits]


@pytest.fixture
def built():
    encode = BagEncoder()
    return KnowledgeIndex.build(chunks(), encode), encode


def test_bm25_ranks_by_the_query_words_and_skips_chunks_without_them(built):
    index, _encode = built
    hits = index.search("blocked card", None, k=10, mode="bm25")
    assert ids(index, hits)[0] == "cards.md#1"
    assert set(ids(index, hits)) == {"cards.md#0", "cards.md#1", "fees.md#1"}  # the ones saying 'card'
    assert index.search("zebra", None, mode="bm25") == []


def test_hybrid_fusions_combine_both_rankings(built):
    index, encode = built
    query = "card abroad"
    vector = encode([query])[0]
    dense = index.search(query, vector, k=5, mode="dense")
    sparse = index.search(query, None, k=5, mode="bm25")
    rrf = index.search(query, vector, k=5, mode="hybrid", fusion="rrf")
    # reciprocal rank fusion: each chunk's score is the sum of 1 / (60 + rank) over the lists
    expected: dict[int, float] = {}
    for ranking in (dense, sparse):
        for rank, hit in enumerate(ranking):
            expected[hit.row] = expected.get(hit.row, 0.0) + 1 / (RRF_K + rank + 1)
    assert next(h.row for h in rrf) == max(expected, key=lambda r: expected[r])
    assert all(h.score == pytest.approx(expected[h.row]) for h in rrf)
    # weighted: all dense = the dense order, none = the BM25 order
    all_dense = index.search(query, vector, k=3, mode="hybrid", fusion="weighted", weight=1.0)
    assert [h.row for h in all_dense] == [h.row for h in dense[:3]]
    all_sparse = index.search(query, vector, k=3, mode="hybrid", fusion="weighted", weight=0.0)
    assert [h.row for h in all_sparse] == [h.row for h in sparse[:3]]
    # weighted RRF: weight 1 leaves the dense ranking alone
    dense_rrf = index.search(query, vector, k=3, mode="hybrid", fusion="rrf", weight=1.0)
    assert [h.row for h in dense_rrf] == [h.row for h in dense[:3]]
    with pytest.raises(UsageError, match="fusion 'max': use one of rrf, weighted"):
        index.search(query, vector, fusion="max")


def test_filters_select_chunks_before_ranking(built):
    index, encode = built
    vector = encode(["card"])[0]
    hits = index.search("card", vector, k=10, filters={"source": "fees.md"})
    assert {index.chunks[h.row].source for h in hits} == {"fees.md"}
    hits = index.search("card branches", vector, k=10, mode="bm25", filters={"lang": ["de"]})
    assert ids(index, hits) == ["hours.md#0"]
    assert index.search("card", vector, filters={"source": "nothing.md"}) == []


def test_add_and_delete_reuse_the_existing_embeddings(built):
    index, encode = built
    before = encode.encoded
    extra = [Chunk("atm.md", "atm", "markdown", 0, "Cash machines abroad charge a fee.", {})]
    grown = index.added(extra, encode, replace=set())
    assert encode.encoded - before == 1  # only the new chunk was embedded
    shrunk = grown.without({"fees.md"})
    assert encode.encoded - before == 1
    rebuilt = KnowledgeIndex.build([c for c in chunks() if c.source != "fees.md"] + extra, BagEncoder())
    query = "cash abroad card fee"
    for mode in ("bm25", "dense", "hybrid"):
        vector = encode([query])[0]
        got = shrunk.search(query, vector, k=5, mode=mode)
        want = rebuilt.search(query, vector, k=5, mode=mode)
        assert ids(shrunk, got) == ids(rebuilt, want)
        assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5)
    # adding a source already there replaces its chunks
    replaced = index.added(
        [Chunk("fees.md", "fees", "markdown", 0, "Everything is free now.", {})], encode, {"fees.md"}
    )
    assert [c.text for c in replaced.chunks if c.source == "fees.md"] == ["Everything is free now."]


def test_the_saved_index_searches_the_same(built):
    index, encode = built
    loaded = KnowledgeIndex.from_blobs(index.to_blobs())
    vector = encode(["card abroad"])[0]
    for mode in ("bm25", "dense", "hybrid"):
        assert ids(loaded, loaded.search("card abroad", vector, mode=mode)) == ids(
            index, index.search("card abroad", vector, mode=mode)
        )
    assert loaded.chunks == index.chunks


def test_bm25_matches_word_forms_and_an_unstemmed_saved_index_stays_unstemmed(built):
    index, encode = built
    assert tokenize("Blocking my cards") == ["block", "card"]
    hits = index.search("blocking cards", None, k=10, mode="bm25")
    assert ids(index, hits)[0] == "cards.md#1"  # "blocked card": other forms of the same words
    # an index saved before stemming (its blobs carry no tokenizer) keeps reading its own tokens
    old = KnowledgeIndex(index.chunks, [tokenize(f"{c.title} {c.text}", stem=False) for c in index.chunks],
                         index.embeddings, stemmed=False)  # fmt: skip
    loaded = KnowledgeIndex.from_blobs(old.to_blobs())
    assert not loaded.stemmed
    assert ids(loaded, loaded.search("blocked card", None, mode="bm25"))[0] == "cards.md#1"
    assert loaded.added(chunks({"new.md": ["Cards are blocked."]}), encode, set()).tokens[-1] == [
        "new", "cards", "blocked",
    ]  # fmt: skip
