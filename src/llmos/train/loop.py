"""The training loop every llmos task uses.

A lean loop in plain PyTorch rather than the Hugging Face Trainer: llmos needs per-step
control that the Trainer hides or makes costly to reach (length-grouped batches over
pre-tokenised rows, a separate learning rate for the task head, AdaLoRA's per-step rank
reallocation, checkpoints holding only trainable weights, later DP-SGD through Opacus
and Ray Train's DDP wrapper), and it drops the Trainer's per-step overhead. Device
placement and mixed precision come from `device.resolve_placement` (bf16 autocast on
GPUs, fp32 on CPU; fp16 uses a gradient scaler).

Tasks differ only by their drivers: the loop sees row features, a collate function from
the input driver, and the loss from the output driver.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from llmos.core.errors import TrainingError
from llmos.core.progress import Progress, SilentProgress
from llmos.train.batching import inference_batches, training_batches
from llmos.train.device import Placement

Collate = Callable[[Sequence[Any]], dict[str, torch.Tensor]]
# an extra loss term from a batch's logits and its row indices: how continual learning
# (adapt: EWC's parameter anchor, LwF's distillation) joins the one loop
Regularizer = Callable[[torch.Tensor, Sequence[int]], torch.Tensor]


class Objective(Protocol):
    """What the loop needs from an output driver (classification) or a token-level
    objective (generation): the batch's targets, the loss, and validation metrics."""

    @property
    def token_level(self) -> bool: ...

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Sequence[int]) -> Any: ...

    def loss(self, logits: Any, targets: Any) -> Any: ...

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]: ...


@dataclass
class Rows:
    """Encoded rows of one split: input features, their lengths and targets."""

    features: list[Any]
    lengths: list[int]
    targets: torch.Tensor | None  # None when the targets travel in the features (generation)

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class LoopSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int
    lr: float
    head_lr: float
    schedule: str
    warmup: float
    weight_decay: float
    max_grad_norm: float
    gradient_accumulation: int
    group_by_length: bool
    seed: int
    early_stopping: Any = None  # spec.schema.EarlyStopping
    checkpoint_every: int | None = None  # optimiser steps between mid-epoch checkpoints
    privacy: Any = None  # train.privacy.PrivacySettings: DP-SGD through Opacus


@dataclass
class LoopResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    samples_per_second: float = 0.0
    steps: int = 0
    privacy: dict[str, Any] | None = None  # the accountant's epsilon and the DP settings
    # per-step tracking (step, epoch, name, value): loss, lr, samples_per_s each optimizer
    # step, and each epoch's validation record at its last step (kept in memory, written
    # to the store in one batch when the run registers)
    step_metrics: list[tuple[int, int, str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _param_groups(model: nn.Module, lr: float, head_lr: float, weight_decay: float) -> list[dict[str, Any]]:
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    # a model may name more new (randomly initialised) parts that train at the head's rate
    # (under DDP the model is wrapped: its own attributes live on `.module`)
    head_prefixes = tuple(getattr(getattr(model, "module", model), "head_prefixes", ("head.",)))
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.removeprefix("module.").startswith(head_prefixes)  # "module." under DDP
        no_decay = param.ndim < 2 or "norm" in name.lower()
        groups.setdefault((is_head, no_decay), []).append(param)
    return [
        {
            "params": params,
            "lr": head_lr if is_head else lr,
            "weight_decay": 0.0 if nd else weight_decay,
        }
        for (is_head, nd), params in groups.items()
    ]


def _fused_adamw(device: torch.device | str) -> bool:
    """Whether torch has a fused AdamW kernel for this device (CPU and CUDA do)."""
    return torch.device(device).type in ("cpu", "cuda")


def _schedule(kind: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        if kind == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)

    return factor


def steps_per_epoch(num_rows: int, batch_size: int, accumulation: int) -> int:
    return math.ceil(math.ceil(num_rows / batch_size) / accumulation)


@torch.inference_mode()
def predict_logits(
    model: nn.Module,
    collate: Collate,
    features: Sequence[Any],
    lengths: Sequence[int],
    batch_size: int,
    placement: Placement,
    progress: Progress | None = None,
    max_tokens: int | None = None,
) -> torch.Tensor:
    """Logits for every row, in input order; rows are batched by length internally
    (at most `batch_size` rows and, if given, `max_tokens` padded tokens per batch)."""
    model.eval()
    out: list[torch.Tensor | None] = [None] * len(features)
    for batch in inference_batches(lengths, batch_size, max_tokens):
        inputs = {k: v.to(placement.device) for k, v in collate([features[i] for i in batch]).items()}
        with placement.autocast():
            logits = model(**inputs).float().cpu()
        for row, i in zip(logits, batch):
            out[i] = row
        if progress is not None:
            progress.advance(len(batch))
    return stack_rows([t for t in out if t is not None])


def stack_rows(rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-row logits; rows of different lengths (tags per word) are padded with
    NaN, which the output driver reads as "no word here"."""
    if not rows:
        return torch.empty(0)
    if all(r.shape == rows[0].shape for r in rows):
        return torch.stack(rows)
    width = max(r.shape[0] for r in rows)
    padded = torch.full((len(rows), width, *rows[0].shape[1:]), math.nan)
    for i, r in enumerate(rows):
        padded[i, : r.shape[0]] = r
    return padded


def fit(
    model: nn.Module,
    collate: Collate,
    output: Objective,
    train: Rows,
    settings: LoopSettings,
    placement: Placement,
    validation: Rows | None = None,
    checkpoint_dir: Path | None = None,
    progress: Progress | None = None,
    after_step: Callable[[int], None] | None = None,
    resume_from: Path | None = None,
    regularizer: Regularizer | None = None,
) -> LoopResult:
    """Train `model` in place; return per-epoch history. Restores the best epoch's weights
    when early stopping watches a validation set. With `resume_from` (a checkpoint of this
    run's settings), training continues where the checkpoint was taken (after an epoch, or
    mid-epoch with `settings.checkpoint_every`) and ends exactly as an uninterrupted run
    would: the batch order of an epoch is a function of the seed and the epoch, and the
    RNG states come back with the weights, so the skipped batches are the ones done.
    A `regularizer` adds its term to every training batch's loss."""
    progress = progress or SilentProgress()
    seed_everything(settings.seed)
    model.to(placement.device)
    optimizer = torch.optim.AdamW(
        _param_groups(model, settings.lr, settings.head_lr, settings.weight_decay),
        # one fused kernel per step instead of a dozen passes over every weight: on CPU
        # the update of MiniLM's 22.7M weights went from 35% of a training step to 11%,
        # 5x faster (batch 32 x 20 tokens, loaded machine); the HF Trainer has defaulted
        # to it since torch 2.8. Under DP-SGD, Opacus wraps the optimiser: kept plain.
        fused=settings.privacy is None and _fused_adamw(placement.device),
    )
    per_epoch = steps_per_epoch(len(train), settings.batch_size, settings.gradient_accumulation)
    private = None
    if settings.privacy is not None:  # DP-SGD: per-example clipping, noise, Poisson batches
        from llmos.train.privacy import PrivateTraining

        private = PrivateTraining.attach(
            model, optimizer, len(train), settings.batch_size, settings.epochs, settings.privacy
        )
        optimizer, per_epoch = private.optimizer, private.steps_per_epoch
    total_steps = per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(settings.schedule, int(total_steps * settings.warmup), total_steps)
    )
    scaler = torch.amp.GradScaler(enabled=placement.dtype is torch.float16)
    trainable = [p for p in model.parameters() if p.requires_grad]
    result = LoopResult()
    stop = settings.early_stopping
    best_score = -math.inf
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs = 0
    seen = 0
    first_epoch = 1
    position: dict[str, Any] | None = None  # where in an epoch a mid-epoch checkpoint was taken
    if resume_from is not None:
        state = restore_checkpoint(resume_from, model, optimizer, scheduler)
        first_epoch, result.steps = state["epoch"] + 1, state["step"]
        result.history = state["history"]
        early = state["early"]
        best_score, bad_epochs, result.best_epoch = early["score"], early["bad"], early["best_epoch"]
        best_state = state.get("best_state")
        position = state.get("position")
        if private is not None and state.get("privacy") is not None:
            private.load_state_dict(state["privacy"])  # the budget already spent
        if position is not None:
            first_epoch = position["epoch"]
        progress.log(f"resumed from {resume_from.name} (epoch {state['epoch']}, step {result.steps})")
    started = time.perf_counter()

    for epoch in range(first_epoch, settings.epochs + 1):
        model.train()
        if private is not None:
            private.check_budget(epoch)
            batches = private.epoch_batches()
        else:
            batches = training_batches(
                train.lengths, settings.batch_size, settings.seed + epoch, settings.group_by_length
            )
        progress.start(f"epoch {epoch}/{settings.epochs}", len(train))
        running, count, skip = 0.0, 0, 0
        if position is not None and position["epoch"] == epoch:
            running, count, skip, seen = (
                position["running"],
                position["count"],
                position["batch"],
                position["seen"],
            )
            progress.advance(count)
        optimizer.zero_grad(set_to_none=True)
        for b, batch in enumerate(batches):
            if b < skip:
                continue
            inputs = {
                k: v.to(placement.device) for k, v in collate([train.features[i] for i in batch]).items()
            }
            targets = output.batch_targets(inputs, train.targets, batch).to(placement.device)
            with placement.autocast():
                logits = model(**inputs)
            loss = output.loss(logits, targets)
            if regularizer is not None:
                loss = loss + regularizer(logits, batch)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {epoch}, batch {b + 1}: lower train.lr"
                )
            scaler.scale(loss / settings.gradient_accumulation).backward()
            last = b + 1 == len(batches)
            stepped = (b + 1) % settings.gradient_accumulation == 0 or last
            if stepped:
                scaler.unscale_(optimizer)
                if private is None:  # DP-SGD clips each example's gradient instead
                    torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                result.steps += 1
                if after_step is not None:  # before zero_grad: AdaLoRA reads the gradients
                    after_step(result.steps)
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            running += loss.item() * len(batch)
            count += len(batch)
            seen += len(batch)
            elapsed = time.perf_counter() - started
            progress.advance(len(batch), loss=running / count, samples_per_s=seen / max(elapsed, 1e-9))
            if stepped:
                rate = scheduler.get_last_lr()[0]
                result.step_metrics.extend(
                    (
                        (result.steps, epoch, "loss", round(loss.item(), 6)),
                        (result.steps, epoch, "lr", float(rate)),
                        (result.steps, epoch, "samples_per_s", round(seen / max(elapsed, 1e-9), 3)),
                    )
                )
            every = settings.checkpoint_every
            if checkpoint_dir is not None and every and stepped and not last and result.steps % every == 0:
                early = {"score": best_score, "bad": bad_epochs, "best_epoch": result.best_epoch}
                here = {"epoch": epoch, "batch": b + 1, "running": running, "count": count, "seen": seen}
                save_checkpoint(
                    checkpoint_dir,
                    model,
                    optimizer,
                    scheduler,
                    epoch - 1,
                    result.steps,
                    result.history,
                    early,
                    best_state,
                    position=here,
                    privacy=private.state_dict() if private else None,
                )
        progress.finish()
        record: dict[str, float] = {"epoch": epoch, "train_loss": round(running / max(count, 1), 5)}
        if validation is not None and len(validation):
            record.update(validation_record(model, collate, output, validation, settings, placement))
        result.history.append(record)
        result.step_metrics.extend(
            (result.steps, epoch, key, float(value)) for key, value in record.items() if key != "epoch"
        )
        progress.log(f"epoch {epoch}: " + ", ".join(f"{k} {v}" for k, v in record.items() if k != "epoch"))
        epoch_done = getattr(progress, "epoch_done", None)  # a search trial reports to its Optuna trial
        if epoch_done is not None:
            epoch_done(record)
        if stop is not None and validation is not None:
            metric = -record["val_loss"] if stop.metric == "loss" else record[f"val_{stop.metric}"]
            if metric > best_score + stop.min_delta:
                best_score, bad_epochs, result.best_epoch = metric, 0, epoch
                best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            else:
                bad_epochs += 1
                result.stopped_early = bad_epochs >= stop.patience
        else:
            result.best_epoch = epoch
        if checkpoint_dir is not None:
            early = {"score": best_score, "bad": bad_epochs, "best_epoch": result.best_epoch}
            save_checkpoint(
                checkpoint_dir,
                model,
                optimizer,
                scheduler,
                epoch,
                result.steps,
                result.history,
                early,
                best_state,
                privacy=private.state_dict() if private else None,
            )
        if result.stopped_early:
            progress.log(f"early stopping after epoch {epoch}; best epoch {result.best_epoch}")
            break
    result.train_seconds = time.perf_counter() - started
    result.samples_per_second = seen / max(result.train_seconds, 1e-9)
    if private is not None:
        result.privacy = private.summary()
        progress.log(f"privacy: epsilon {result.privacy['epsilon']} spent (delta {private.settings.delta:g})")
        private.detach()
    if best_state is not None:
        load_trainable(model, best_state)
    model.eval()
    return result


def validation_record(
    model: nn.Module,
    collate: Collate,
    output: Objective,
    rows: Rows,
    settings: LoopSettings,
    placement: Placement,
) -> dict[str, float]:
    """Validation loss and quick metrics; for token-level objectives also perplexity."""
    if output.token_level:
        loss = mean_token_loss(model, collate, output, rows, settings.eval_batch_size, placement)
        return {"val_loss": round(loss, 5), "val_perplexity": round(math.exp(min(loss, 50.0)), 4)}
    logits = predict_logits(model, collate, rows.features, rows.lengths, settings.eval_batch_size, placement)
    record = {"val_loss": round(float(output.loss(logits, rows.targets)), 5)}
    for key, score in output.quick_metrics(logits, rows.targets).items():
        record[f"val_{key}"] = round(score, 5)
    return record


@torch.inference_mode()
def mean_token_loss(
    model: nn.Module,
    collate: Collate,
    output: Objective,
    rows: Rows,
    batch_size: int,
    placement: Placement,
    progress: Progress | None = None,
) -> float:
    """Mean loss per target token over `rows` (its exp is the perplexity)."""
    model.eval()
    total, count = 0.0, 0
    for batch in inference_batches(rows.lengths, batch_size):
        inputs = {k: v.to(placement.device) for k, v in collate([rows.features[i] for i in batch]).items()}
        targets = output.batch_targets(inputs, rows.targets, batch)
        with placement.autocast():
            logits = model(**inputs)
        total += float(output.loss(logits, targets)) * len(targets)
        count += len(targets)
        if progress is not None:
            progress.advance(len(batch))
    return total / max(count, 1)


def load_trainable(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved values into the model's parameters of the same names."""
    named = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in tensors.items():
            named[name].copy_(value)


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    epoch: int,
    step: int,
    history: list[dict[str, float]],
    early: dict[str, Any],
    best_state: dict[str, torch.Tensor] | None = None,
    position: dict[str, Any] | None = None,
    privacy: dict[str, Any] | None = None,
) -> Path:
    """Save a resumable checkpoint: trainable weights, optimiser, schedule, RNG states,
    history, early-stopping state, the privacy accountant's history (DP runs) and,
    mid-epoch, the position in the epoch's batches (`epoch` is then the last completed
    one). Only the latest checkpoint is kept."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "epoch": epoch,
        "step": step,
        "history": history,
        "early": early,
        "best_state": best_state,
        "position": position,
        "privacy": privacy,
        "trainable": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
    }
    name = f"epoch-{epoch}" if position is None else f"epoch-{position['epoch']}-batch-{position['batch']}"
    path = folder / f"{name}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    for old in folder.glob("epoch-*.pt"):
        if old != path:
            old.unlink()
    return path


def _checkpoint_order(path: Path) -> tuple[int, float]:
    """`epoch-3.pt` (epoch 3 done) sorts after `epoch-3-batch-5.pt` (5 batches into it)."""
    parts = path.stem.split("-")
    return int(parts[1]), float(parts[3]) if len(parts) == 4 else math.inf


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("epoch-*.pt"), key=_checkpoint_order)
    return found[-1] if found else None


def restore_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` into a freshly built model and optimiser."""
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc
    unknown = sorted(set(state["trainable"]) - {n for n, _ in model.named_parameters()})
    if unknown:
        raise TrainingError(f"checkpoint {path} does not fit this model (e.g. {unknown[0]})")
    load_trainable(model, state["trainable"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state
