"""Which script a text column is written in, and how much of it a tokenizer cannot read.

`cjk_share` is the share of a column's letters that are Chinese, Japanese or Korean
(Han ideographs, kana, hangul); a column is mostly CJK above one half. `unknown_share` is
the share of a column's non-space characters that a tokenizer maps to its unknown token
(all-MiniLM-L6-v2's English WordPiece vocabulary reads about 60% of a Chinese review as
[UNK]); above `UNKNOWN_WARN` a model learns little from the column, and llmos says so.
Measured on a sample of rows: both are cheap on a large dataset.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

UNKNOWN_WARN = 0.10  # share of characters in unknown tokens above which llmos warns
MOSTLY = 0.5
SAMPLE = 500

CJK_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # Han extension A
    (0x4E00, 0x9FFF),  # Han
    (0xAC00, 0xD7AF),  # hangul syllables
    (0xF900, 0xFAFF),  # Han compatibility
    (0x20000, 0x2FA1F),  # Han extensions B-F
)


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in CJK_RANGES)


def sample(values: Sequence[Any], n: int = SAMPLE) -> list[str]:
    texts = [str(v) for v in values if isinstance(v, str) and v.strip()]
    if len(texts) > n:
        texts = random.Random(0).sample(texts, n)
    return texts


def cjk_share(values: Sequence[Any]) -> float:
    """Share of the letters (alphabetic characters) of `values` that are CJK."""
    letters = cjk = 0
    for text in sample(values):
        for ch in text:
            if ch.isalpha():
                letters += 1
                cjk += is_cjk(ch)
    return round(cjk / letters, 4) if letters else 0.0


def mostly_cjk(values: Sequence[Any]) -> bool:
    return cjk_share(values) > MOSTLY


def unknown_share(tokenizer: Any, values: Sequence[Any]) -> float:
    """Share of the non-space characters of `values` inside tokens the tokenizer maps to
    its unknown token (0 for byte-level tokenizers, which have none)."""
    unk = tokenizer.unk_token_id
    texts = sample(values)
    if unk is None or not texts:
        return 0.0
    total = unknown = 0
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
        total += sum(1 for ch in text if not ch.isspace())
        for token, (start, end) in zip(ids, offsets):
            if token == unk:
                unknown += sum(1 for ch in text[start:end] if not ch.isspace())
    return round(unknown / total, 4) if total else 0.0
