"""Continued pre-training (`task: pretrain`): a masked-LM for encoders, a causal LM for
decoders, saved as a plain Hugging Face model folder that later specs name in `model:`.

Encoders are loaded with `AutoModelForMaskedLM`. Checkpoints that ship without a
masked-LM head (all-MiniLM-L6-v2 is a bare `BertModel`) get BERT's head built the way
transformers builds it: the output projection's weight is the word-embedding matrix
(tied, so it starts as the pretrained embeddings), and the transform in front of it (a
dense layer, GELU and LayerNorm) and the output bias start from scratch (normal(0, 0.02)
weights, zero bias, LayerNorm at identity); that transform trains at the head's learning
rate. The masking is BERT's: 15% of the real tokens are targets, of which 80% become
[MASK], 10% a random token and 10% stay. Decoders reuse the generation task's
`CausalLMTask` (logits only where a target is).

A saved model folder holds `llmos_model.json` (kind `encoder` or `causal-lm`, task
`pretrain`, objective, base model, method) and `model/`: the weights (a peft adapter is
merged in first, so the result is a plain model), the tokenizer and, for sentence
encoders, the base's `1_Pooling` config (classifiers built on it pool as the base did).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmos.core.errors import ModelError, first_line
from llmos.models.causal import IGNORE, base_of
from llmos.models.loading import quiet_transformers
from llmos.models.zoo import ResolvedModel

MASK_PROBABILITY = 0.15
FORMAT_VERSION = 1
MODEL_FILE = "llmos_model.json"


def objective_of(resolved: ResolvedModel) -> str:
    """`causal` for decoders (causal LMs), `mlm` for encoders."""
    if resolved.kind is not None:
        from llmos.models.kinds import model_kind

        return "causal" if model_kind(resolved.kind).generates else "mlm"
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(resolved.path)
    archs = getattr(config, "architectures", None) or []
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    return "causal" if causal or getattr(config, "is_decoder", False) else "mlm"


class MaskedLMTask(nn.Module):
    """A masked LM for the training loop: logits at the masked positions only."""

    def __init__(self, lm: nn.Module, head_names: tuple[str, ...]) -> None:
        super().__init__()
        self.lm = lm
        self.head_prefixes = head_names  # trained at the head's learning rate (train.loop)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Any:
        logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits[labels != IGNORE]


class MaskedTokenObjective:
    """Cross-entropy of the masked tokens (the model returns logits at those alone)."""

    token_level = True

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Any) -> Any:
        labels = inputs["labels"]
        return labels[labels != IGNORE]

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), targets)

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        return {"token_accuracy": float((logits.argmax(-1) == targets).float().mean())}


class MaskingCollator:
    """Pads token-id rows and masks them (BERT's 80/10/10) from its own seeded generator."""

    def __init__(self, tokenizer: Any, pad_id: int, seed: int, probability: float = MASK_PROBABILITY) -> None:
        if tokenizer.mask_token_id is None:
            raise ModelError("the model's tokenizer has no mask token: it cannot be masked-LM trained")
        self.mask_id = int(tokenizer.mask_token_id)
        self.vocab = len(tokenizer)
        self.special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.pad_id = pad_id
        self.probability = probability
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, features: list[list[int]]) -> dict[str, torch.Tensor]:
        ids, mask = pad(features, self.pad_id)
        g = self.generator
        real = mask.bool() & ~torch.isin(ids, self.special)
        chosen = real & (torch.rand(ids.shape, generator=g) < self.probability)
        for row in range(len(features)):  # every row has at least one target
            if not chosen[row].any() and real[row].any():
                candidates = real[row].nonzero().flatten()
                pick = candidates[torch.randint(len(candidates), (1,), generator=g)]
                chosen[row, pick] = True
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
        draw = torch.rand(ids.shape, generator=g)
        inputs = ids.clone()
        inputs[chosen & (draw < 0.8)] = self.mask_id
        swap = chosen & (draw >= 0.8) & (draw < 0.9)
        inputs[swap] = torch.randint(self.vocab, (int(swap.sum()),), generator=g)
        return {"input_ids": inputs, "attention_mask": mask, "labels": labels}


class CausalCollator:
    """Pads token-id rows; every real token after the first is a target."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[list[int]]) -> dict[str, torch.Tensor]:
        ids, mask = pad(features, self.pad_id)
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, IGNORE)}


def pad(features: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(f) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for i, f in enumerate(features):
        ids[i, : len(f)] = torch.tensor(f, dtype=torch.long)
        mask[i, : len(f)] = 1
    return ids, mask


def build_pretraining_model(
    resolved: ResolvedModel, objective: str, method_cfg: Any, total_steps: int
) -> Any:
    """The model to continue pre-training, with `method_cfg` (full or a peft method) applied,
    and a line saying how its language-model head starts."""
    from llmos.models.causal import build_causal_lm
    from llmos.models.peft_methods import apply_method

    if objective == "causal":
        return build_causal_lm(resolved, method_cfg, total_steps), "the model's own LM head"
    from transformers import AutoModelForMaskedLM

    quiet_transformers()
    try:
        lm, info = AutoModelForMaskedLM.from_pretrained(resolved.path, output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {resolved.name!r} as a masked LM: {first_line(exc)}") from exc
    fresh = sorted(info["missing_keys"])
    new_names = {n for n, _ in lm.named_parameters() if n in set(fresh)}
    if fresh:
        start = (
            "a new masked-LM head: output weight tied to the word embeddings; "
            f"{', '.join(fresh)} initialised from scratch"
        )
    else:
        start = "the checkpoint's own masked-LM head"
    lm = apply_method(lm, method_cfg, total_steps)
    names = []
    for name, param in lm.named_parameters():
        short = name.removeprefix("base_model.model.")
        if short in new_names:  # the new head trains under peft methods too
            param.requires_grad_(True)
            names.append(f"lm.{name}")
    return MaskedLMTask(lm, tuple(names)), start


def save_pretrained_model(
    model: Any, tokenizer: Any, config: dict[str, Any], resolved: ResolvedModel, dest: Path
) -> None:
    """Write the model folder: `llmos_model.json` and `model/` (adapter merged in)."""
    lm = model.lm
    if hasattr(lm, "merge_and_unload"):
        lm = lm.merge_and_unload()
    lm = base_of(lm)
    target = dest / "model"
    lm.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    pooling = Path(resolved.path) / "1_Pooling"
    if pooling.is_dir():
        shutil.copytree(pooling, target / "1_Pooling")
    (dest / MODEL_FILE).write_text(json.dumps({"format": FORMAT_VERSION, **config}, indent=2))
