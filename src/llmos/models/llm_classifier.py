"""An LLM as a classifier without training, and the sentence embedder few-shot prompts use.

`LabelScorer` returns, for each prompt, the log-likelihood of every label's answer: the
prompt runs once, its KV cache is copied for each label, and only the answer tokens run
again, so ten labels cost little more than one. The scores are the logits of an
ordinary classifier: `Predictor`, `llmos eval` and `llmos predict` treat a zero-shot
model like a fine-tuned one, and their reports compare directly.

Saved as a model folder with `llmos_model.json` (method, base model, label words,
instruction), `tokenizer/`, and for few-shot `examples.parquet` + `examples.safetensors`
(the labelled pool and its embeddings).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmos.models.build import MODEL_FILE, load_encoder, load_tokenizer
from llmos.models.classifier import pool
from llmos.models.zoo import ResolvedModel, sentence_pooling

FORMAT_VERSION = 1


class LabelScorer(nn.Module):
    """Log-likelihood of each label's answer tokens after each prompt: logits [B, L]."""

    def __init__(self, lm: nn.Module, score: str = "sum", max_rows: int = 64) -> None:
        super().__init__()
        from llmos.models.causal import base_of

        self.model = base_of(lm)
        self.score = score
        self.max_rows = max_rows  # sequences per answer pass (bounds the logits' memory)

    @torch.no_grad()
    def forward(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        answer_ids: torch.Tensor,
        answer_mask: torch.Tensor,
    ) -> torch.Tensor:
        from llmos.models.kv_batch import prefill

        rows, labels = prompt_ids.shape[0], answer_ids.shape[0]
        out, positions = prefill(self.model, prompt_ids, prompt_mask)
        first = out.logits[:, -1].float().log_softmax(-1)[:, answer_ids[:, 0]]  # [B, L]
        if answer_ids.shape[1] == 1:
            total = first
        else:
            rest = torch.zeros(rows, labels, device=first.device)
            step = max(1, self.max_rows // labels)
            for start in range(0, rows, step):  # a block of prompts, every label
                index = torch.arange(start, min(rows, start + step), device=first.device)
                block = copy.deepcopy(out.cache)
                block.batch_select_indices(index)
                block.batch_repeat_interleave(labels)
                n = len(index)
                ids = answer_ids[:, :-1].repeat(n, 1)
                mask = torch.cat(
                    [prompt_mask[index].repeat_interleave(labels, 0), answer_mask[:, :-1].repeat(n, 1)], 1
                )
                pos = positions[index, -1:].repeat_interleave(labels, 0) + torch.arange(
                    1, answer_ids.shape[1], device=ids.device
                )
                logits = self.model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=pos,
                    cache=block,
                    use_cache=True,
                ).logits.float()
                targets = answer_ids[:, 1:].repeat(n, 1)
                token_lp = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                token_lp = token_lp * answer_mask[:, 1:].repeat(n, 1)
                rest[index] = token_lp.sum(-1).view(n, labels)
            total = first + rest
        if self.score == "mean":
            total = total / answer_mask.sum(1).clamp(min=1)
        return total


class SentenceEmbedder:
    """L2-normalised sentence embeddings from an encoder with its own pooling (mean for
    sentence-transformers models such as all-MiniLM-L6-v2)."""

    def __init__(self, resolved: ResolvedModel, max_length: int = 128, batch_size: int = 64) -> None:
        self.encoder = load_encoder(resolved.path).eval()
        self.tokenizer = load_tokenizer(resolved.path)
        self.pooling = (sentence_pooling(resolved.path) if resolved.local else None) or "mean"
        self.max_length = max_length
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            hidden = self.encoder(**batch).last_hidden_state
            pooled = pool(hidden, batch["attention_mask"], self.pooling)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)


def save_prompt_classifier(
    dest: Path,
    tokenizer: Any,
    config: dict[str, Any],
    pool_texts: Sequence[str] | None = None,
    pool_labels: Sequence[int] | None = None,
    pool_embeddings: torch.Tensor | None = None,
) -> None:
    import pandas as pd
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(dest / "tokenizer")
    if pool_texts is not None and pool_embeddings is not None and pool_labels is not None:
        pd.DataFrame({"text": list(pool_texts), "label": list(pool_labels)}).to_parquet(
            dest / "examples.parquet", index=False
        )
        save_file({"embeddings": pool_embeddings.contiguous()}, str(dest / "examples.safetensors"))
    (dest / MODEL_FILE).write_text(json.dumps({"format": FORMAT_VERSION, **config}, indent=2))


def load_pool(folder: Path) -> tuple[list[str], list[int], torch.Tensor] | None:
    if not (folder / "examples.parquet").exists():
        return None
    import pandas as pd
    from safetensors.torch import load_file

    frame = pd.read_parquet(folder / "examples.parquet")
    embeddings = load_file(str(folder / "examples.safetensors"))["embeddings"]
    return frame["text"].tolist(), [int(x) for x in frame["label"]], embeddings
