"""The `pretrain` task: continued pre-training on a column of raw text, without labels.

Same loop as every task. Texts are tokenised and cut into windows of the input's
`max_length` (a long text gives several rows, nothing is thrown away); encoders learn
to fill in masked tokens, decoders to predict the next token (`models/pretrain.py`).
The report gives the held-out loss and perplexity before and after (for masked LMs:
of the same masked positions, drawn from a fixed seed). The registered version is a
base model: a later spec names it in `model:` (NAME or NAME@V), and the model trained on
it records it as its base model.
"""

from __future__ import annotations

import math
from typing import Any

from llmos.core.errors import DataError
from llmos.spec.tasks import Pretrain
from llmos.train.loop import Rows, fit, mean_token_loss, seed_everything, steps_per_epoch
from llmos.train.workflow import (
    RunResult,
    TrainJob,
    Workflow,
    loop_settings,
    register_workflow,
    training_summary,
    write_report,
)


@register_workflow
class PretrainWorkflow(Workflow):
    rules = Pretrain

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return run_pretrain(job)


def windows(tokenizer: Any, texts: list[Any], max_length: int, eos: bool) -> list[list[int]]:
    """Token-id rows of at most `max_length` (special tokens included) covering each text."""
    clean = [str(t) for t in texts if t is not None and t == t and str(t).strip()]  # t == t: not NaN
    encoded = tokenizer(clean, add_special_tokens=False)["input_ids"]
    prefix, suffix = special_ends(tokenizer)
    room = max_length - len(prefix) - len(suffix) - (1 if eos else 0)
    if room < 1:
        raise DataError(f"inputs.0.max_length ({max_length}) leaves no room for text")
    rows = []
    for ids in encoded:
        for start in range(0, len(ids), room):
            piece = list(ids[start : start + room])
            if eos:
                piece.append(tokenizer.eos_token_id)
            rows.append(prefix + piece + suffix)
    return rows


def special_ends(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text ([CLS] and [SEP], a BOS)."""
    full = list(tokenizer("a")["input_ids"])
    bare = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return full[:i], full[i + len(bare) :]
    return [], []


def kind_name(causal: bool) -> str:
    """The model kind a pre-trained folder is saved as: a causal LM, or an encoder."""
    from llmos.models.kinds.causal_lm import CausalLMKind
    from llmos.models.kinds.encoder import EncoderKind

    return (CausalLMKind if causal else EncoderKind).name


def run_pretrain(job: TrainJob) -> RunResult:
    from llmos.modalities.chat import NextTokenObjective
    from llmos.modalities.text import TextDriver
    from llmos.models.build import load_tokenizer
    from llmos.models.pretrain import (
        CausalCollator,
        MaskedTokenObjective,
        MaskingCollator,
        build_pretraining_model,
        objective_of,
        save_pretrained_model,
    )

    spec, prepared, progress = job.spec, job.prepared, job.progress
    feature, cfg, resolved = spec.text_input, spec.train, prepared.resolved
    tokenizer = load_tokenizer(resolved.path)
    objective = objective_of(resolved)
    causal = objective == "causal"
    pad_id = TextDriver(feature.name, tokenizer, feature.max_length).pad_id
    eos = causal and tokenizer.eos_token_id is not None
    rows: dict[str, Rows] = {}
    for split, frame, source in (
        ("train", prepared.splits.train, prepared.train_source),
        ("test", prepared.splits.test, prepared.test_source),
    ):
        ids = windows(tokenizer, frame[feature.name].tolist(), feature.max_length, eos)
        if not ids:
            raise DataError(f"{source}: text column {feature.name!r} holds no text")
        rows[split] = Rows(ids, [len(i) for i in ids], None)

    def collate(seed: int) -> Any:
        return CausalCollator(pad_id) if causal else MaskingCollator(tokenizer, pad_id, seed)

    loss_fn: Any = NextTokenObjective() if causal else MaskedTokenObjective()
    settings = loop_settings(cfg, spec.method.type, head=not causal)
    total_steps = steps_per_epoch(len(rows["train"]), cfg.batch_size, cfg.gradient_accumulation) * cfg.epochs
    seed_everything(cfg.seed)
    model, head = build_pretraining_model(resolved, objective, spec.method, total_steps)
    model.to(prepared.placement.device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    def held_out() -> dict[str, float]:
        loss = mean_token_loss(
            model, collate(cfg.seed + 1), loss_fn, rows["test"], cfg.eval_batch_size, prepared.placement
        )
        return {"loss": round(loss, 5), "perplexity": round(math.exp(min(loss, 50.0)), 4)}

    progress.log(f"starting from {head}")
    before = held_out()
    progress.log(
        f"pre-training {spec.name}: {resolved.name} ({'causal LM' if causal else 'masked LM'}) + "
        f"{spec.method.type} on {prepared.placement.describe()}, {len(rows['train'])} text windows, "
        f"{trainable:,} of {total:,} parameters trainable"
    )
    result = fit(
        model,
        collate(cfg.seed),
        loss_fn,
        rows["train"],
        settings,
        prepared.placement,
        checkpoint_dir=job.run_dir / "checkpoints",
        progress=progress,
    )
    after = held_out()
    metrics: dict[str, Any] = {
        **after,
        "objective": objective,
        "before": before,
        "num_examples": len(rows["test"]),
        "train_windows": len(rows["train"]),
        "head": head,
        **training_summary(result, trainable, total),
    }
    folder = job.run_dir / "model"
    config = {
        "kind": kind_name(causal),
        "task": "pretrain",
        "objective": objective,
        "base_model": resolved.registered or resolved.alias or resolved.path,
        "method": spec.method.type,
        "input": {"column": feature.name, "max_length": feature.max_length},
    }
    save_pretrained_model(model, tokenizer, config, resolved, folder)
    write_report(folder, spec, metrics, result.history, f"{spec.name} on {prepared.test_source}")
    return folder, metrics, result.history, result.train_seconds
