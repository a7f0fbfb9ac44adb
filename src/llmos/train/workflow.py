"""What every task's workflow shares, and the workflow registry.

Each task is trained by one `Workflow` subclass in its own module of `train/workflows/`,
all of the same shape (LLaMA-Factory's per-stage `workflow.py`): `run(job)` takes the
run's checked inputs (`TrainJob`: store, spec, prepared datasets and model, run folder,
progress, checkpoints) and returns the model folder it wrote, its metrics, history and
training seconds. `train_from_spec` prepares the inputs, asks `workflow_for(spec.task)`
and registers what the workflow wrote; it knows no task by name.

A new task is one module with a `@register_workflow` class naming its spec rules
(`spec.tasks.TaskRules` subclass: which inputs and outputs it takes); the decorator
registers both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pandas as pd
import yaml

from llmos.core.progress import Progress
from llmos.modalities.base import InputDriver, OutputDriver
from llmos.modalities.inputs import InputSet
from llmos.spec.schema import TaskSpec, TrainConfig, method_config
from llmos.spec.tasks import TASK_RULES, TaskRules, register_task_rules
from llmos.store.db import Store
from llmos.store.schema import DatasetVersion
from llmos.train.loop import LoopSettings, Rows
from llmos.train.metrics import plot_confusion_matrix

RunResult = tuple[Path, dict[str, Any], list[dict[str, float]], float]


@dataclass
class Splits:
    train: pd.DataFrame
    test: pd.DataFrame
    validation: pd.DataFrame | None
    record: dict[str, Any]


def encode_rows(
    driver: InputDriver | InputSet, output: OutputDriver, frame: pd.DataFrame, source: str
) -> Rows:
    output.check_column(frame, source)
    targets = output.encode(frame[output.column], source)
    features = driver.encode_frame(frame, source)
    return Rows(features, [driver.length(f) for f in features], targets)


def loop_settings(cfg: TrainConfig, method: str, head: bool = True, privacy: Any = None) -> LoopSettings:
    """The loop's settings from the spec, unset learning rates taking the method's defaults
    (for a model with a task `head`, or a causal LM); `privacy`
    (train.privacy.PrivacySettings) makes the run DP-SGD."""
    lr, head_lr = method_config(method).default_lrs(head)
    return LoopSettings(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size,
        lr=cfg.lr or lr,
        head_lr=cfg.head_lr or head_lr,
        schedule=cfg.schedule,
        warmup=cfg.warmup,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        gradient_accumulation=cfg.gradient_accumulation,
        group_by_length=cfg.group_by_length,
        seed=cfg.seed,
        early_stopping=cfg.early_stopping,
        checkpoint_every=cfg.checkpoint_every,
        privacy=privacy,
    )


@dataclass
class Prepared:
    """A run's checked inputs: datasets, recorded splits, the resolved model and device."""

    train_ds: DatasetVersion
    test_ds: DatasetVersion | None
    val_ds: DatasetVersion | None
    splits: Splits
    resolved: Any  # models.zoo.ResolvedModel; None for tasks without a spec-wide `model`
    placement: Any  # train.device.Placement
    artifacts_dir: Path | None = None  # where zoo models cache their weights

    @property
    def train_source(self) -> str:
        return f"dataset {self.train_ds.ref}"

    @property
    def test_source(self) -> str:
        return f"dataset {self.test_ds.ref}" if self.test_ds else f"test split of {self.train_ds.ref}"

    @property
    def val_source(self) -> str:
        return f"dataset {self.val_ds.ref}" if self.val_ds else "validation split"


def write_report(
    folder: Path,
    spec: TaskSpec,
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    title: str,
    steps: list[tuple[int, int, str, float]] | None = None,
) -> None:
    """The spec and report (metrics, history, confusion matrix) beside a model's weights;
    with the loop's per-step metrics, `steps.json` (what the store's run metrics are read
    from when the run registers) and `curves.png`, drawn from exactly those values (what it
    drew, read back from the figure, in `curves.json`)."""
    report = folder / "report"
    report.mkdir(parents=True, exist_ok=True)
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (report / "history.json").write_text(json.dumps(history, indent=2))
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    if "confusion_matrix" in metrics:
        (report / "confusion_matrix.json").write_text(json.dumps(metrics["confusion_matrix"]))
        plot_confusion_matrix(metrics["confusion_matrix"], report / "confusion_matrix.png", title)
    if steps:
        from llmos.train.tracking import plot_curves

        (report / "steps.json").write_text(json.dumps([list(s) for s in steps]))
        drawn = plot_curves(steps, report / "curves.png", title)
        (report / "curves.json").write_text(json.dumps(drawn))


def training_summary(result: Any, trainable: int, total: int) -> dict[str, Any]:
    """What a model's metrics record about its training (`result` is the loop's `LoopResult`)."""
    return {
        "train_seconds": round(result.train_seconds, 2),
        "train_samples_per_second": round(result.samples_per_second, 2),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "trainable_parameters": trainable,
        "total_parameters": total,
        **({"privacy": result.privacy} if getattr(result, "privacy", None) else {}),
    }


@dataclass
class TrainJob:
    """One training run's checked inputs, what every workflow's `run` receives."""

    store: Store
    spec: TaskSpec
    prepared: Prepared
    run_dir: Path  # the run's work folder; the workflow writes its model to run_dir / "model"
    progress: Progress
    checkpoint_dir: Path | None = None  # outlives the attempt (a kernel job resumes from it)


class Workflow:
    """How one task trains. Subclasses set `rules` and implement `run`."""

    rules: ClassVar[type[TaskRules]] = TaskRules

    @classmethod
    def task(cls) -> str:
        return cls.rules.name

    @classmethod
    def supports_ray(cls, spec: TaskSpec) -> bool:
        """Can `backend: ray` (Ray Train, DDP) train this spec?"""
        return False

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        raise NotImplementedError


WORKFLOWS: dict[str, type[Workflow]] = {}
W = TypeVar("W", bound="type[Workflow]")


def register_workflow(cls: W) -> W:
    """Register a task's workflow, and its spec rules when the spec does not know them yet."""
    if cls.rules.name not in TASK_RULES:
        register_task_rules(cls.rules)
    WORKFLOWS[cls.rules.name] = cls
    return cls


def workflow_for(task: str) -> type[Workflow]:
    import llmos.train.workflows  # noqa: F401  (registers the built-in workflows)

    return WORKFLOWS[task]
