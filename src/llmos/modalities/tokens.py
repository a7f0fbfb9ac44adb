"""Token tagging: a `tokens` input (pre-split words) and a `tags` output (one BIO tag per word).

Sub-word alignment: the words are tokenised as pre-split words (the tokenizer's
`word_ids` map sub-words back to words) and the model reads the tag of a word from the
vector of its first sub-word (the usual recipe for BERT-style NER). The input driver
records where each word starts; the model gathers those positions, so the logits,
targets and predictions are per word, never per sub-word. Words cut off by `max_length`
(or that the tokenizer drops entirely) get all-zero logits, which decode as `O` (the
first label) and carry no gradient.

Predicted tag rows of different lengths are padded with NaN by the model and the predict
path; `predicted` and `decode` trim a row at its first NaN. Entity-level metrics come
from seqeval (conlleval rules), the standard for CoNLL-style NER.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.base import InputDriver, OutputDriver, input_driver, output_driver

PAD_WORD = -1  # word slot beyond a row's last word
CUT_WORD = -2  # a word whose first sub-word fell beyond max_length
IGNORE = -100  # target of a padding slot


def as_words(value: Any) -> list[str]:
    """A row's words: a list (or array, as Parquet returns them) or a space-separated string."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


@input_driver("tokens")
class TokensDriver(InputDriver):
    type_name = "tokens"

    def __init__(self, column: str, tokenizer: Any, max_length: int = 256) -> None:
        super().__init__(column)
        self.tokenizer = tokenizer
        self.max_length = max_length
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else 0)

    def encode(self, values: Sequence[Any]) -> list[tuple[list[int], list[int]]]:
        rows = [as_words(v) for v in values]
        if not rows:
            return []
        encoded = self.tokenizer(
            rows, is_split_into_words=True, truncation=True, max_length=self.max_length, padding=False
        )
        out = []
        for i, words in enumerate(rows):
            starts = [CUT_WORD] * len(words)
            for position, word in enumerate(encoded.word_ids(i)):
                if word is not None and starts[word] == CUT_WORD:
                    starts[word] = position
            out.append((list(encoded["input_ids"][i]), starts))
        return out

    def length(self, feature: tuple[list[int], list[int]]) -> int:
        return len(feature[0])

    def collate(self, features: Sequence[tuple[list[int], list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(ids) for ids, _ in features)
        words = max(1, max(len(starts) for _, starts in features))
        ids_t = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        starts_t = torch.full((len(features), words), PAD_WORD, dtype=torch.long)
        for i, (ids, starts) in enumerate(features):
            ids_t[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[i, : len(ids)] = 1
            if starts:
                starts_t[i, : len(starts)] = torch.tensor(starts, dtype=torch.long)
        return {"input_ids": ids_t, "attention_mask": mask, "word_starts": starts_t}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "max_length": self.max_length}


def entities(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word + 1) of every entity in a BIO tag row."""
    found: list[tuple[str, int, int]] = []
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        inside = tag.startswith("I-") and kind == tag[2:]
        if kind is not None and not inside:
            found.append((kind, start, i))
            kind = None
        if tag.startswith("B-") or (tag.startswith("I-") and not inside):
            kind, start = tag[2:], i
    return found


@output_driver("tags")
class TagsDriver(OutputDriver):
    type_name = "tags"
    metric_kind = "entities"

    def __init__(self, column: str, labels: list[str], tokens_column: str = "tokens") -> None:
        super().__init__(column, labels)
        self.tokens_column = tokens_column
        self.index = {label: i for i, label in enumerate(labels)}

    @classmethod
    def fit(cls, column: str, values: pd.Series, **options: Any) -> TagsDriver:
        from llmos.store.conll import check_bio

        seen = {t for row in values for t in as_words(row)}
        bad = sorted(t for t in seen if not check_bio(t))
        if bad:
            raise DataError(f"tag column {column!r} has tags that are not BIO: {', '.join(bad[:5])}")
        kinds = sorted({t[2:] for t in seen if t != "O"})
        if not kinds:
            raise DataError(f"tag column {column!r} holds no entity tags (only O)")
        # both B- and I- of every entity type, even if training never shows one of them
        return cls(column, ["O", *[f"{p}-{k}" for k in kinds for p in "BI"]], **options)

    def check_column(self, frame: pd.DataFrame, source: str) -> None:
        super().check_column(frame, source)
        if self.tokens_column not in frame.columns:
            return  # the input driver reports its own missing column
        for row, (words, tags) in enumerate(zip(frame[self.tokens_column], frame[self.column])):
            n_words, n_tags = len(as_words(words)), len(as_words(tags))
            if n_words != n_tags:
                raise DataError(
                    f"{source}: row {row + 1} has {n_words} tokens but {n_tags} tags; "
                    "every token needs exactly one tag"
                )

    def encode(self, values: pd.Series, source: str) -> Any:
        import torch

        rows = [as_words(v) for v in values]
        unknown = sorted({t for row in rows for t in row} - set(self.index))
        if unknown:
            raise DataError(
                f"{source}: column {self.column!r} has tags the model was not trained on: "
                + ", ".join(repr(u) for u in unknown[:5])
            )
        width = max(1, max((len(r) for r in rows), default=1))
        target = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                target[i, : len(row)] = torch.tensor([self.index[t] for t in row])
        return target

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        width = min(logits.shape[1], targets.shape[1])
        targets = targets[:, :width]
        keep = targets != IGNORE
        return F.cross_entropy(logits[:, :width][keep].float(), targets[keep])

    def probabilities(self, logits: Any) -> Any:
        return logits.float().softmax(-1)

    def _rows(self, probs: Any) -> list[Any]:
        """Each row's per-word probabilities, cut at the NaN padding."""
        out = []
        for row in probs:
            real = ~row[:, 0].isnan()
            out.append(row[: int(real.sum())])
        return out

    def predicted(self, probs: Any) -> Any:
        return [[self.labels[i] for i in row.argmax(-1).tolist()] for row in self._rows(probs)]

    def target_array(self, targets: Any) -> Any:
        return [[self.labels[i] for i in row.tolist() if i != IGNORE] for row in targets]

    def decode(self, probs: Any) -> list[dict[str, Any]]:
        out = []
        for row in self._rows(probs):
            best = row.max(-1)
            tags = [self.labels[i] for i in best.indices.tolist()]
            scores = best.values.tolist()
            spans = [
                {"type": kind, "start": a, "end": b, "score": round(min(scores[a:b]), 6)}
                for kind, a, b in entities(tags)
            ]
            out.append({"tags": tags, "entities": spans})
        return out

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        from seqeval.metrics import f1_score

        truth = self.target_array(targets)
        pred = [p[: len(t)] for p, t in zip(self.predicted(self.probabilities(logits)), truth)]
        words = sum(len(t) for t in truth)
        right = sum(a == b for p, t in zip(pred, truth) for a, b in zip(p, t))
        return {
            "accuracy": right / max(words, 1),
            "macro_f1": float(f1_score(truth, pred, average="macro", zero_division=0)),
            "f1": float(f1_score(truth, pred, zero_division=0)),
        }

    def to_columns(self, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
        return {
            "prediction": [" ".join(r["tags"]) for r in rows],
            "entities": [
                "; ".join(f"{e['type']}:{e['start']}-{e['end']}" for e in r["entities"]) for r in rows
            ],
        }

    def state(self) -> dict[str, Any]:
        return {**super().state(), "tokens_column": self.tokens_column}
