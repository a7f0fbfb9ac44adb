"""Text input for an LLM used as a classifier without training (zero- and few-shot).

Each text becomes a chat prompt that lists the categories and asks for one; few-shot
prompts first show the `k` labelled examples most similar to the text (cosine similarity
of sentence embeddings). A batch pairs every prompt with every label's answer tokens, so
the model can score each label's log-likelihood (`models.llm_classifier.LabelScorer`).
The prompt goes through the model's `ChatFormat`, like every other LLM prompt in llmos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmos.modalities.base import InputDriver, input_driver
from llmos.modalities.chat import ChatFormat, Messages

DEFAULT_INSTRUCTION = (
    "Classify the user's message into exactly one of these categories: {categories}. "
    "Answer with the category only."
)
Embed = Callable[[Sequence[str]], Any]  # texts -> L2-normalised embeddings [n, d]


def label_words(labels: Sequence[str], overrides: dict[str, str] | None) -> list[str]:
    overrides = overrides or {}
    return [overrides.get(label, label.replace("_", " ").replace("-", " ")) for label in labels]


@dataclass
class ExamplePool:
    """Labelled rows few-shot prompts draw from, with their embeddings."""

    texts: list[str]
    labels: list[int]
    embeddings: Any  # torch tensor [n, d], L2-normalised


@input_driver("label-prompt")
class LabelPromptDriver(InputDriver):
    type_name = "label-prompt"

    def __init__(
        self,
        column: str,
        chat: ChatFormat,
        words: list[str],
        instruction: str | None = None,
        k: int = 0,
        pool: ExamplePool | None = None,
        embed: Embed | None = None,
    ) -> None:
        super().__init__(column)
        self.chat = chat
        self.words = words
        self.instruction = (instruction or DEFAULT_INSTRUCTION).format(categories=", ".join(words))
        self.k = k
        self.pool = pool
        self.embed = embed
        tok = chat.tokenizer
        # each label's answer: its words and the end of the turn, so "card" cannot win
        # for a text whose answer is "card arrival"
        self.answers = [
            list(tok(word + chat.turn_end, add_special_tokens=False)["input_ids"]) for word in words
        ]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_id = int(pad if pad is not None else 0)

    def messages(self, text: str, shots: Sequence[int] = ()) -> Messages:
        messages: Messages = [{"role": "system", "content": self.instruction}]
        for i in shots:
            assert self.pool is not None
            messages.append({"role": "user", "content": self.pool.texts[i]})
            messages.append({"role": "assistant", "content": self.words[self.pool.labels[i]]})
        messages.append({"role": "user", "content": text})
        return messages

    def shots(self, texts: Sequence[str]) -> list[list[int]]:
        """The pool rows shown before each text, most similar last (closest to the question)."""
        if not self.k or self.pool is None or self.embed is None:
            return [[] for _ in texts]
        import torch

        sims = self.embed(texts) @ self.pool.embeddings.T
        top = torch.topk(sims, min(self.k, sims.shape[1]), dim=1).indices
        return [list(reversed(row)) for row in top.tolist()]

    def encode(self, values: Sequence[Any]) -> list[list[int]]:
        texts = ["" if v is None or v != v else str(v) for v in values]  # v != v: NaN
        return [self.chat.prompt_ids(self.messages(t, s)) for t, s in zip(texts, self.shots(texts))]

    def length(self, feature: list[int]) -> int:
        return len(feature)

    def collate(self, features: Sequence[list[int]]) -> dict[str, Any]:
        """Prompts left-padded (their answers all start at the same position) and every
        label's answer right-padded, for `LabelScorer`."""
        import torch

        width = max(len(f) for f in features)
        prompt = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        prompt_mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            prompt[i, width - len(f) :] = torch.tensor(f)
            prompt_mask[i, width - len(f) :] = 1
        longest = max(len(a) for a in self.answers)
        answers = torch.full((len(self.answers), longest), self.pad_id, dtype=torch.long)
        answer_mask = torch.zeros((len(self.answers), longest), dtype=torch.long)
        for j, a in enumerate(self.answers):
            answers[j, : len(a)] = torch.tensor(a)
            answer_mask[j, : len(a)] = 1
        return {
            "prompt_ids": prompt,
            "prompt_mask": prompt_mask,
            "answer_ids": answers,
            "answer_mask": answer_mask,
        }
