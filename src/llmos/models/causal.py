"""Causal language models: build for training, save, load, and export merged weights.

A generation model folder holds `llmos_model.json` (task, base model, method, chat
template, system prompt), `tokenizer/` (with the chat template inside) and either
`model/` (full fine-tuning) or `adapter/` (peft; the base is named in the json).

`CausalLMTask` computes the vocabulary projection only at positions whose next token is a
target: with loss on answer tokens only, that skips most of the largest matrix product
of a small LLM (SmolLM2's 49k-token head) and the memory of full logits.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llmos.core.errors import ModelError, first_line
from llmos.models.build import MODEL_FILE, load_tokenizer, quiet_transformers, read_model_config
from llmos.models.kinds import kind_of
from llmos.models.zoo import ResolvedModel, resolve_model
from llmos.spec.schema import METHOD_CONFIGS

FORMAT_VERSION = 1
IGNORE = -100


def is_prompt_learning(lm: nn.Module) -> bool:
    config = getattr(lm, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def base_of(lm: nn.Module) -> Any:
    """The transformers model under a peft wrapper (adapter layers stay injected in it)."""
    get = getattr(lm, "get_base_model", None)
    return get() if callable(get) else lm


class CausalLMTask(nn.Module):
    """A causal LM for the training loop: logits at answer positions only."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> Any:
        targets = labels[:, 1:] != IGNORE
        if is_prompt_learning(self.lm):
            logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits
            logits = logits[:, -input_ids.shape[1] :]  # drop the virtual tokens' positions
            return logits[:, :-1][targets]
        base = base_of(self.lm)
        hidden = base.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return base.get_output_embeddings()(hidden[:, :-1][targets])


def has_adapter(method: str) -> bool:
    """Is a generation model trained with `method` saved as an adapter over its base? (A
    pretrained LM's method is "none": it has none.)"""
    cls = METHOD_CONFIGS.get(method)
    return cls is not None and cls.keeps == "adapter"


def load_causal_lm(path: str) -> Any:
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {path!r} as a causal LM: {first_line(exc)}") from exc


def context_length(lm: nn.Module) -> int | None:
    config = base_of(lm).config
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def build_causal_lm(resolved: ResolvedModel, method_cfg: Any, total_steps: int) -> CausalLMTask:
    from llmos.models.peft_methods import apply_method

    lm = load_causal_lm(resolved.path)
    lm.config.use_cache = False  # training: no KV cache
    return CausalLMTask(apply_method(lm, method_cfg, total_steps, task_type="CAUSAL_LM"))


def save_causal_lm(model: CausalLMTask, tokenizer: Any, config: dict[str, Any], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / ("adapter" if has_adapter(config["method"]) else "model")
    model.lm.save_pretrained(target, safe_serialization=True)  # type: ignore[operator]
    tokenizer.save_pretrained(dest / "tokenizer")
    (dest / MODEL_FILE).write_text(json.dumps({"format": FORMAT_VERSION, **config}, indent=2))


@dataclass
class LoadedLM:
    lm: Any  # a transformers causal LM, possibly peft-wrapped
    tokenizer: Any
    config: dict[str, Any]


def load_generation_model(folder: Path, artifacts_dir: Path | None = None) -> LoadedLM:
    """Load a saved generation model (base + adapter, or full weights) for inference."""
    config = read_model_config(folder)
    if not kind_of(config).generates:
        raise ModelError(f"{folder}: a {config.get('task')} model, not a generation model")
    if not has_adapter(config["method"]):
        lm = load_causal_lm(str(folder / "model"))
    else:
        from peft import PeftModel

        base = resolve_model(config["base_model"], artifacts_dir)
        lm = PeftModel.from_pretrained(load_causal_lm(base.path), str(folder / "adapter"))
    lm.eval()
    lm.config.use_cache = True
    return LoadedLM(lm=lm, tokenizer=load_tokenizer(str(folder / "tokenizer")), config=config)


def load_base_lm(resolved: ResolvedModel) -> LoadedLM:
    """A plain pretrained causal LM (a zoo alias, folder or hub id) for chat and zero-shot."""
    lm = load_causal_lm(resolved.path)
    lm.eval()
    config = {"task": "generation", "base_model": resolved.alias or resolved.path, "method": "none"}
    return LoadedLM(lm=lm, tokenizer=load_tokenizer(resolved.path), config=config)


def export_model(loaded: LoadedLM, fmt: str, out: Path) -> Path:
    """Write `merged` (full weights, loadable by plain transformers) or `adapter` (loadable by
    plain peft on the base model) into `out`, via a temporary folder renamed at the end."""
    if out.exists() and any(out.iterdir()):
        raise ModelError(f"{out}: the folder exists and is not empty; choose a new --out")
    method = loaded.config["method"]
    if fmt == "adapter" and not has_adapter(method):
        raise ModelError(f"a {method} model has no adapter to export: use --format merged")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        lm = loaded.lm
        if fmt == "merged":
            if has_adapter(method):
                if is_prompt_learning(lm):
                    raise ModelError(f"{method} tuning cannot be merged into weights: use --format adapter")
                import copy

                lm = copy.deepcopy(lm).merge_and_unload()
            lm.save_pretrained(tmp, safe_serialization=True)
        else:
            lm.save_pretrained(tmp)  # adapter_config.json names the base model's folder or id
        loaded.tokenizer.save_pretrained(tmp)
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
