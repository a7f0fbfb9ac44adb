"""Fine-tuning methods: which weights train, through peft for the parameter-efficient ones.

Each method is one entry of `METHOD_BUILDERS`, mapping the spec's method config to a
peft config. The task head is never wrapped: it is always trained in full, and saved
beside the adapter. Each method's default learning rates, and whether it may share a
base or train under DP, are class attributes of its spec config (`spec/schema.py`,
`MethodBase`): a good rate for LoRA (1e-3) would wreck full fine-tuning and starve
prompt tuning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from llmos.core.errors import ModelError, first_line


def _lora(cfg: Any, total_steps: int, task_type: Any) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules or "all-linear",
        bias="none",
        task_type=task_type,
    )


def _adalora(cfg: Any, total_steps: int, task_type: Any) -> Any:
    from peft import AdaLoraConfig

    if cfg.target_r > cfg.init_r:
        raise ModelError(f"method.target_r ({cfg.target_r}) must be <= method.init_r ({cfg.init_r})")
    total = max(total_steps, 10)
    return AdaLoraConfig(
        init_r=cfg.init_r,
        target_r=cfg.target_r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules or "all-linear",
        total_step=total,
        tinit=int(total * 0.1),
        tfinal=int(total * 0.2),
        deltaT=max(1, total // 50),
        task_type=task_type,
    )


def _ia3(cfg: Any, total_steps: int, task_type: Any) -> Any:
    from peft import IA3Config

    return IA3Config(
        target_modules=cfg.target_modules,
        feedforward_modules=cfg.feedforward_modules,
        task_type=task_type,
    )


def _prefix(cfg: Any, total_steps: int, task_type: Any) -> Any:
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=task_type or TaskType.FEATURE_EXTRACTION, num_virtual_tokens=cfg.num_virtual_tokens
    )


def _prompt(cfg: Any, total_steps: int, task_type: Any) -> Any:
    from peft import PromptTuningConfig, TaskType

    return PromptTuningConfig(
        task_type=task_type or TaskType.FEATURE_EXTRACTION, num_virtual_tokens=cfg.num_virtual_tokens
    )


METHOD_BUILDERS: dict[str, Callable[[Any, int, Any], Any]] = {
    "lora": _lora,
    "adalora": _adalora,
    "ia3": _ia3,
    "prefix": _prefix,
    "prompt": _prompt,
}


def apply_method(encoder: nn.Module, cfg: Any, total_steps: int, task_type: str | None = None) -> nn.Module:
    """Return the model ready for `cfg.type`: as is for `full`, with every weight fixed for
    `frozen`, else peft-wrapped. `task_type` is a peft TaskType name (`CAUSAL_LM` for
    generation models)."""
    keeps = type(cfg).keeps
    if keeps == "weights":  # full fine-tuning
        return encoder
    if keeps == "nothing":  # frozen
        return encoder.requires_grad_(False)
    from peft import get_peft_model

    try:
        peft_config = METHOD_BUILDERS[cfg.type](cfg, total_steps, task_type)
        return get_peft_model(encoder, peft_config)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"method {cfg.type!r} cannot be applied to this model: {first_line(exc)}") from exc


def after_optimizer_step(encoder: nn.Module, step: int) -> None:
    """Per-step hooks of a method (AdaLoRA reallocates its rank budget here)."""
    update = getattr(getattr(encoder, "base_model", None), "update_and_allocate", None)
    if update is not None and str(getattr(encoder, "peft_type", "")).endswith("ADALORA"):
        update(step)
