"""`LLM`: a causal LM ready to talk: weights, chat format and generator in one object.

`llmos chat`, `llmos generate`, the SDK and the server all go through it, so a model
answers through the same template it was trained with (saved in its folder). A plain
pretrained LM (a zoo alias, folder or hub id) works too, with its tokenizer's template.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from llmos.core.errors import UsageError
from llmos.modalities.chat import ChatFormat, Messages, parse_messages
from llmos.models.causal import LoadedLM, load_base_lm, load_generation_model
from llmos.models.generation import (
    Completion,
    GenerationEngine,
    Generator,
    SamplingParams,
    TextCallback,
)
from llmos.models.kinds import model_kind
from llmos.models.zoo import check_loadable, resolve_model


class LLM:
    def __init__(self, loaded: LoadedLM, name: str, chat_template: str | None = None) -> None:
        config = loaded.config
        self.name = name
        self.lm = loaded.lm
        self.tokenizer = loaded.tokenizer
        self.config = config
        template = chat_template or config.get("chat_template")
        self.format = ChatFormat(loaded.tokenizer, template, config.get("system_prompt"))
        self.generator = Generator(loaded.lm, loaded.tokenizer, [self.format.turn_end])
        self._engine: GenerationEngine | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: Path, name: str, artifacts_dir: Path | None = None) -> LLM:
        return cls(load_generation_model(folder, artifacts_dir), name)

    @classmethod
    def from_pretrained(
        cls, name: str, artifacts_dir: Path | None = None, chat_template: str | None = None
    ) -> LLM:
        resolved = resolve_model(name, artifacts_dir)
        check_loadable(resolved)
        if resolved.kind is not None and not model_kind(resolved.kind).generates:
            raise UsageError(f"{name} is an encoder; chat and generate need a causal LM such as smollm2-135m")
        return cls(load_base_lm(resolved), name, chat_template)

    def chat(
        self, messages: Any, params: SamplingParams | None = None, on_text: TextCallback | None = None
    ) -> Completion:
        """The next assistant turn of a conversation (OpenAI-format messages)."""
        checked: Messages = parse_messages(messages, "messages", need_answer=False)
        prompt = self.format.prompt_ids(checked)
        return self.generator.generate([prompt], [params or SamplingParams()], on_text)[0]

    def complete(
        self, prompt: str, params: SamplingParams | None = None, on_text: TextCallback | None = None
    ) -> Completion:
        """Continue raw text, without the chat template (OpenAI's legacy completions)."""
        ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return self.generator.generate([ids], [params or SamplingParams()], on_text)[0]

    def engine(self, max_batch: int = 16, max_wait_ms: float = 10.0) -> GenerationEngine:
        """The shared batching engine for concurrent callers (the server's chat route)."""
        with self._lock:
            if self._engine is None:
                self._engine = GenerationEngine(self.generator, max_batch, max_wait_ms)
            return self._engine
