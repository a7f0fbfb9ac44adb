"""Chat input: conversations in OpenAI message format, rendered by ONE chat template.

The most common failure after fine-tuning a chat model elsewhere is a model that never
stops or repeats itself, because training formatted conversations one way and serving
another. Here `ChatFormat` is the only code that turns messages into tokens: training
(`ChatDriver`), evaluation, `llmos chat`/`generate`, zero-/few-shot prompts and the
server all call it, and the template it uses is saved with the model.

Training examples are the rendered conversation with loss only on the assistant turns:
the span of each assistant turn runs from the end of the generation prompt to the end of
the turn, so the end-of-turn marker is learned too (that is what makes the model stop).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmos.core.errors import DataError, ModelError
from llmos.modalities.base import InputDriver, input_driver

ROLES = ("system", "user", "assistant")
IGNORE = -100

# ChatML, the template most instruction-tuned models use; offered for models without one.
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
Messages = list[dict[str, str]]


def parse_messages(value: Any, where: str, need_answer: bool = True) -> Messages:
    """Check one conversation and return it as a list of `{role, content}` dicts.

    `value` is a list of messages or its JSON text (CSV cells). Errors name `where`
    (e.g. "dataset chats@1, row 7") and the message at fault.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not a JSON list of messages ({exc.msg})") from None
    if hasattr(value, "tolist"):  # numpy arrays from Parquet
        value = value.tolist()
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: a conversation is a non-empty list of {{role, content}} messages")
    messages: Messages = []
    for i, message in enumerate(value, 1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise DataError(f"{where}: message {i} must have `role` and `content`")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise DataError(f"{where}: message {i} has unknown role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"{where}: message {i} content must be text")
        if role == "system" and i > 1:
            raise DataError(f"{where}: message {i}: a system message may only come first")
        if role == "assistant" and not content.strip():
            raise DataError(f"{where}: message {i} is an empty assistant turn")
        messages.append({"role": role, "content": content})
    if need_answer and not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: the conversation has no assistant message to learn from")
    if messages[0]["role"] == "assistant" or (
        messages[0]["role"] == "system" and len(messages) > 1 and messages[1]["role"] == "assistant"
    ):
        raise DataError(f"{where}: the conversation must start with a user message")
    return messages


class ChatFormat:
    """A tokenizer and its chat template: messages in, token ids out."""

    def __init__(self, tokenizer: Any, template: str | None = None, system_prompt: str | None = None):
        if template == "chatml":
            template = CHATML
        template = template or getattr(tokenizer, "chat_template", None)
        if not template:
            raise ModelError(
                "this model's tokenizer has no chat template: give one as a Jinja template or "
                "`chatml` (spec: `generation.chat_template`; chat and generate: --chat-template)"
            )
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError("generation needs a fast tokenizer (tokenizer.json)")
        tokenizer.chat_template = template  # saved with the tokenizer, so serving reads the same
        self.tokenizer = tokenizer
        self.template = template
        self.system_prompt = system_prompt
        self.turn_end = self._turn_end()

    def _turn_end(self) -> str:
        """The text a template puts after an assistant answer (e.g. `<|im_end|>`): the stop marker."""
        probe = "llmos-probe-answer"
        text = self.render([{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}])
        return text[text.rindex(probe) + len(probe) :].strip()

    def with_system(self, messages: Messages) -> Messages:
        if self.system_prompt and messages[0]["role"] != "system":
            return [{"role": "system", "content": self.system_prompt}, *messages]
        return messages

    def render(self, messages: Messages, add_generation_prompt: bool = False) -> str:
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=self.template
        )
        return str(text)

    def prompt_ids(self, messages: Messages) -> list[int]:
        """Token ids that ask the model for the next assistant turn (chat, generate, serve)."""
        text = self.render(self.with_system(messages), add_generation_prompt=True)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def example(self, messages: Messages) -> tuple[list[int], list[int]]:
        """A training example: token ids and labels (IGNORE outside assistant turns)."""
        messages = self.with_system(messages)
        text = self.render(messages)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = self.render(messages[:i], add_generation_prompt=True)
            end = self.render(messages[: i + 1])
            if not (text.startswith(start) and text.startswith(end)):
                raise ModelError(
                    "the chat template renders a conversation differently from its beginning; "
                    "set `generation.chat_template` to a template that appends turns"
                )
            spans.append((len(start), len(end)))
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        labels = [
            tok if any(a <= s < b for a, b in spans) else IGNORE
            for tok, (s, _) in zip(ids, enc["offset_mapping"])
        ]
        return ids, labels


@dataclass
class Example:
    ids: list[int]
    labels: list[int]


@input_driver("chat")
class ChatDriver(InputDriver):
    """Rows of conversations (or prompt/response pairs) as training examples."""

    type_name = "chat"

    def __init__(
        self,
        column: str,
        chat: ChatFormat,
        max_length: int,
        overflow: str = "error",
        response_column: str | None = None,
    ) -> None:
        super().__init__(column)
        self.chat = chat
        self.max_length = max_length
        self.overflow = overflow
        self.response_column = response_column
        tok = chat.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.pad_id = int(pad if pad is not None else 0)

    def conversations(self, frame: Any, source: str) -> list[Messages]:
        """The frame's rows as conversations: a chat column, or a prompt and a response column."""
        self.check_column(frame, source)
        if self.response_column is not None and self.response_column not in frame.columns:
            raise DataError(f"{source}: response column {self.response_column!r} not found")
        out = []
        for i, value in enumerate(frame[self.column].tolist()):
            where = f"{source}, row {i + 1}"
            if self.response_column is None:
                out.append(parse_messages(value, where))
            else:
                pair = [
                    {"role": "user", "content": _cell(value)},
                    {"role": "assistant", "content": _cell(frame[self.response_column].iloc[i])},
                ]
                out.append(parse_messages(pair, where))
        return out

    def encode(self, values: Sequence[Any]) -> list[Example]:
        convs = [parse_messages(v, f"row {i + 1}") for i, v in enumerate(values)]
        return self.encode_conversations(convs, "input")

    def encode_conversations(self, conversations: Sequence[Messages], source: str) -> list[Example]:
        examples = []
        for i, messages in enumerate(conversations):
            ids, labels = self.chat.example(messages)
            if len(ids) > self.max_length:
                if self.overflow == "error":
                    raise DataError(
                        f"{source}, row {i + 1}: {len(ids)} tokens, more than generation.max_length "
                        f"({self.max_length}); raise it or set generation.overflow to truncate or drop"
                    )
                if self.overflow == "drop":
                    continue
                ids, labels = ids[: self.max_length], labels[: self.max_length]
            if any(t != IGNORE for t in labels[1:]):
                examples.append(Example(ids, labels))
        if not examples:
            raise DataError(f"{source}: no example left with an answer to learn from")
        return examples

    def length(self, feature: Example) -> int:
        return len(feature.ids)

    def collate(self, features: Sequence[Example]) -> dict[str, Any]:
        import torch

        width = max(len(f.ids) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            ids[i, : len(f.ids)] = torch.tensor(f.ids)
            labels[i, : len(f.ids)] = torch.tensor(f.labels)
            mask[i, : len(f.ids)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pack(examples: Sequence[Example], max_length: int) -> list[Example]:
    """Concatenate consecutive examples into sequences of at most `max_length` tokens.

    Packed examples attend to the ones before them in the same sequence (as in plain
    packing elsewhere); each keeps its own labels, so the loss is unchanged in kind.
    """
    packed: list[Example] = []
    ids: list[int] = []
    labels: list[int] = []
    for ex in examples:
        if ids and len(ids) + len(ex.ids) > max_length:
            packed.append(Example(ids, labels))
            ids, labels = [], []
        ids = ids + ex.ids
        labels = labels + ex.labels
    if ids:
        packed.append(Example(ids, labels))
    return packed


def _cell(value: Any) -> str:
    return "" if value is None or value != value else str(value)  # value != value: NaN


class NextTokenObjective:
    """The loss of a generation model: cross-entropy of each answer token.

    The model returns logits only where the next token is a target (see
    `models.causal.CausalLMTask`), so targets are those labels, flattened.
    """

    token_level = True

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Sequence[int]) -> Any:
        shifted = inputs["labels"][:, 1:]
        return shifted[shifted != IGNORE]

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), targets)

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        return {"token_accuracy": float((logits.argmax(-1) == targets).float().mean())}
