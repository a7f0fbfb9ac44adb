"""CoNLL token files: one `token<TAB>tag` (or `token ... tag`) line per word, a blank line
between sentences.

Read into the same table shape as a JSONL file of `{"tokens": [...], "tags": [...]}`
rows, so token tagging data imports, versions and trains like any other dataset.
Hand-written because no library in the stack reads CoNLL, and because a malformed line
must be reported by its line number: a word without a tag would otherwise shift every
later tag of its sentence by one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llmos.core.errors import DataError

TOKENS_COLUMN = "tokens"
TAGS_COLUMN = "tags"


def check_bio(tag: str) -> bool:
    """True for `O`, `B-TYPE` and `I-TYPE` (the BIO scheme)."""
    return tag == "O" or (len(tag) > 2 and tag[:2] in ("B-", "I-"))


def read_conll(path: Path, text: str) -> pd.DataFrame:
    """Sentences of `text` (the decoded content of `path`) as rows of tokens and tags."""
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def close() -> None:
        if tokens:
            sentences.append((tokens.copy(), tags.copy()))
            tokens.clear()
            tags.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            close()
            continue
        if line.startswith("-DOCSTART-"):
            continue
        fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
        fields = [f for f in (f.strip() for f in fields) if f]
        if len(fields) < 2:
            raise DataError(
                f"{path}: line {number}: one token, no tag ({line.strip()!r}); "
                "every line needs a token and its tag, separated by a tab"
            )
        tag = fields[-1]
        if not check_bio(tag):
            raise DataError(f"{path}: line {number}: tag {tag!r} is not BIO (O, B-TYPE or I-TYPE)")
        tokens.append(fields[0])
        tags.append(tag)
    close()
    if not sentences:
        raise DataError(f"{path}: no tagged sentences found")
    return pd.DataFrame({TOKENS_COLUMN: [s[0] for s in sentences], TAGS_COLUMN: [s[1] for s in sentences]})
