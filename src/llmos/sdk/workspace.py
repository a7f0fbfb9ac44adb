"""`Workspace`: the Python entry to llmos, and the function layer the CLI calls.

import llmos
ws = llmos.Workspace()                      # LLMOS_HOME or ~/.llmos
ws.import_dataset("intents.csv", name="intents")
outcome = ws.train("spec.yaml")
print(outcome.metrics["accuracy"])
ws.predict("intents", ["my card has not arrived"])
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llmos.core.errors import DataError, JobError, NotFoundError, UsageError
from llmos.core.progress import Progress
from llmos.core.settings import Settings
from llmos.core.util import atomic_path
from llmos.ops import datasets as ops_datasets
from llmos.ops import deployments as ops_deployments
from llmos.ops import models as ops_models
from llmos.ops import specs as ops_specs
from llmos.ops.context import Actor, Context
from llmos.ops.datasets import DatasetInfo, DatasetRows, ImportInfo
from llmos.ops.deployments import DeploymentInfo
from llmos.ops.models import Lineage, ModelFile, ModelInfo, ZooModel
from llmos.ops.specs import SpecCheck, spec_text
from llmos.sdk.jobs import JobsMixin, to_spec
from llmos.spec.schema import TaskSpec
from llmos.store.db import Store
from llmos.store.schema import Job

if TYPE_CHECKING:  # torch stays out of `import llmos`
    from llmos.adapt.monitor import DriftReport
    from llmos.models.generation import Completion, SamplingParams
    from llmos.models.llm import LLM
    from llmos.train.predict import Predictor
    from llmos.train.run import TrainOutcome


def install_redactor() -> None:
    """Audit entries go through the security layer's PII redactor (the store, below the
    security layer, cannot import it; see `store.audit.set_redactor`)."""
    from llmos.security.pii import redact_for_log
    from llmos.store.audit import set_redactor

    set_redactor(redact_for_log)


class Workspace(JobsMixin):
    """The local entry: each method is one call into `llmos.ops` as the local admin
    (`local:<os user>`); `llmos.Client` offers the same methods over HTTP."""

    def __init__(self, home: str | os.PathLike[str] | None = None, actor: Actor | None = None) -> None:
        self.settings = Settings.resolve(home)
        install_redactor()
        self._store: Store | None = None
        self._actor = actor
        self._context: Context | None = None
        self._predictors: dict[str, Predictor] = {}
        self._llms: dict[str, LLM] = {}

    @property
    def context(self) -> Context:
        """The `llmos.ops` context of this workspace's calls."""
        if self._context is None:
            self._context = Context(self.store, self._actor)
        return self._context

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.settings)
        return self._store

    def init(self, encrypt: bool = False) -> Path:
        """Create the workspace (idempotent) and return its folder; `encrypt` turns
        encryption at rest on (`enable_encryption`)."""
        _ = self.store
        for folder in (
            self.settings.artifacts_dir,
            self.settings.runs_dir,
            self.settings.cache_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        if encrypt:
            self.enable_encryption()
        return self.home

    # --- encryption at rest (store.keys) ---------------------------------------------------

    def enable_encryption(self) -> dict[str, Any]:
        from llmos.store.keys import enable_encryption

        return enable_encryption(self.store)

    def rotate_key(self, new_key_file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        from llmos.store.keys import rotate_master_key

        return rotate_master_key(self.store, Path(new_key_file) if new_key_file else None)

    def encryption_status(self) -> dict[str, Any]:
        from llmos.store.keys import encryption_status

        return encryption_status(self.store)

    # --- datasets ---------------------------------------------------------------------

    def import_dataset(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        label: str | None = None,
        format: str | None = None,
        pii: str = "off",
    ) -> ImportInfo:
        """Import a file as a dataset version. `pii`: `off` (no scan), `report` (counts
        per column and type in `result.pii`), `redact` (store `[EMAIL]`-style tags instead
        of the values) or `reject` (refuse a file holding any PII)."""
        return ops_datasets.import_dataset(self.context, path, name, label=label, format=format, pii=pii)

    def datasets(self, name: str | None = None) -> list[DatasetInfo]:
        return ops_datasets.datasets(self.context, name)

    def dataset(self, ref: str) -> DatasetInfo:
        return ops_datasets.dataset(self.context, ref)

    def dataset_rows(self, ref: str, limit: int = 10) -> DatasetRows:
        return ops_datasets.dataset_rows(self.context, ref, limit)

    def dataset_frame(self, ref: str) -> pd.DataFrame:
        """The whole table of a dataset version (pandas; on this machine only)."""
        from llmos.store.datasets import get_dataset, load_frame

        self.context.require("data:read")
        return load_frame(self.store, get_dataset(self.store, ref))

    # --- specs ------------------------------------------------------------------------

    def check_spec(self, spec: dict[str, Any] | str | os.PathLike[str], source: str = "spec") -> SpecCheck:
        """Check a spec (a mapping, its YAML text, or a `Path` to its file): `SpecError`
        lists every problem with its path; warnings name datasets this workspace lacks."""
        body, source = spec_text(spec, source)
        return ops_specs.check_spec(self.context, body, source)

    def spec_schema(self) -> dict[str, Any]:
        return ops_specs.spec_schema(self.context)

    # --- models -----------------------------------------------------------------------

    def zoo(self) -> list[ZooModel]:
        return ops_models.zoo(self.context)

    def models(self, name: str | None = None) -> list[ModelInfo]:
        return ops_models.models(self.context, name)

    def model(self, ref: str) -> ModelInfo:
        return ops_models.model(self.context, ref)

    def lineage(self, ref: str) -> Lineage:
        """The dataset versions a model was trained and tested on."""
        return ops_models.lineage(self.context, ref)

    def model_files(self, ref: str) -> list[ModelFile]:
        """The files of a model's report (metrics.json, confusion_matrix.png, ...) and its spec."""
        return ops_models.model_files(self.context, ref)

    def model_file(self, ref: str, path: str) -> bytes:
        """The bytes of one of `model_files` (decrypted in an encrypted workspace)."""
        return ops_models.model_file(self.context, ref, path)

    def model_path(self, ref: str) -> Path:
        from llmos.store.models import get_model, model_folder

        self.context.require("models:read")
        return model_folder(self.store, get_model(self.store, ref))

    # --- training and use ---------------------------------------------------------------

    def train(
        self,
        spec: str | os.PathLike[str] | dict[str, Any] | TaskSpec,
        progress: Progress | None = None,
    ) -> TrainOutcome:
        from llmos.train.run import train_from_spec

        return train_from_spec(self.store, to_spec(spec), progress)

    def predictor(self, ref: str) -> Predictor:
        from llmos.train.predict import Predictor

        model = self.model(ref)
        if model.task == "generation":
            raise UsageError(f"{model.ref} is a generation model: use `llmos generate` or `llmos chat`")
        if model.ref not in self._predictors:
            self._predictors[model.ref] = Predictor.from_folder(
                self.model_path(model.ref), self.settings.artifacts_dir
            )
        return self._predictors[model.ref]

    def predict(
        self, model: str, inputs: list[Any] | pd.DataFrame, progress: Progress | None = None
    ) -> list[dict[str, Any]]:
        """Predictions for texts (or image paths, ...) of a single-input model, or for rows
        given as dicts of column values (any model)."""
        return self.predictor(model).predict(inputs, progress)

    def evaluate(
        self, model: str, data: str, progress: Progress | None = None, optimize: str | None = None
    ) -> dict[str, Any]:
        """Metrics of `model` on `data`; with `optimize="int8"`, of its int8 version, with the
        full-precision accuracy and the difference under `metrics["optimized"]`."""
        if optimize is not None:
            return self._evaluate_optimized(model, data, optimize, progress)
        row = self.model(model)  # an unknown model is reported before an unknown dataset
        dataset = self.dataset(data)
        frame = self.dataset_frame(dataset.ref)
        if row.task == "generation":
            from llmos.train.generation import evaluate_llm

            return evaluate_llm(self.llm(row.ref), frame, f"dataset {dataset.ref}", progress)
        return self.predictor(model).evaluate(frame, f"dataset {dataset.ref}", progress)

    # --- LLMs -------------------------------------------------------------------------

    def llm(self, ref: str, chat_template: str | None = None) -> LLM:
        """A generation model registered here, or a pretrained causal LM (alias, folder, hub id).
        `chat_template` (Jinja text, a file holding it, or `chatml`) is for causal LMs whose
        tokenizer has none; a registered model always uses the template it was trained with."""
        from llmos.models.llm import LLM

        if chat_template and Path(chat_template).is_file():
            chat_template = Path(chat_template).read_text(encoding="utf-8")
        key = f"{ref}\n{chat_template}" if chat_template else ref
        if key in self._llms:
            return self._llms[key]
        if "@" in ref or self.models(ref):
            row = self.model(ref)
            if row.task != "generation":
                raise UsageError(
                    f"{row.ref} is a {row.task} model; chat and generate need a generation model "
                    "or a causal LM such as smollm2-135m"
                )
            llm = LLM.from_folder(self.model_path(row.ref), row.ref, self.settings.artifacts_dir)
        else:
            llm = LLM.from_pretrained(ref, self.settings.artifacts_dir, chat_template)
        self._llms[key] = llm
        return llm

    def generate(
        self,
        model: str,
        prompts: list[str],
        params: SamplingParams | None = None,
        *,
        system: str | None = None,
        raw: bool = False,
        stream: Any = None,
        chat_template: str | None = None,
    ) -> list[Completion]:
        """Answers to each prompt (one user message each, or raw text with `raw=True`),
        decoded together in one batch. `stream(text)` receives a single prompt's text as it grows."""
        from llmos.models.generation import SamplingParams

        llm = self.llm(model, chat_template)
        params = params or SamplingParams()
        if raw:
            ids = [list(llm.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        else:
            head = [{"role": "system", "content": system}] if system else []
            ids = [llm.format.prompt_ids([*head, {"role": "user", "content": p}]) for p in prompts]
        on_text = (lambda _i, text: stream(text)) if stream is not None and len(prompts) == 1 else None
        return llm.generator.generate(ids, [params] * len(prompts), on_text)

    def export(self, model: str, fmt: str, out: str | os.PathLike[str]) -> Path:
        """Write a generation model as merged weights or as its adapter into the folder `out`."""
        from llmos.models.causal import export_model, load_generation_model

        if fmt not in ("merged", "adapter"):
            raise UsageError(f"unknown export format {fmt!r}: use merged or adapter")
        row = self.model(model)
        if row.task != "generation":
            raise UsageError(f"{row.ref} is a {row.task} model; export handles generation models")
        loaded = load_generation_model(self.model_path(row.ref), self.settings.artifacts_dir)
        return export_model(loaded, fmt, Path(out))

    def predict_file(
        self,
        model: str,
        path: str | os.PathLike[str],
        out: str | os.PathLike[str] | None = None,
        column: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[Path, int]:
        """Predict every row of a data file, every line of a .txt file, or every image
        under a folder; write the inputs with the predictions (label, score and
        per-label probabilities, or tags, or a value) to `out` (CSV or JSONL)."""
        src = Path(path)
        predictor = self.predictor(model)
        needed = predictor.columns
        frame = _read_inputs(src, needed)
        if column is not None:
            if len(needed) > 1:
                raise UsageError(f"--column is for single-input models; this one reads {', '.join(needed)}")
            if column not in frame.columns:
                raise DataError(
                    f"{src}: text column {column!r} not found; columns are {', '.join(frame.columns)} "
                    "(choose one with --column)"
                )
        inputs = frame.copy()
        if column is not None:
            inputs[needed[0]] = frame[column]
        for name in needed:
            if name not in inputs.columns:
                kind = "text column" if len(needed) == 1 else "input column"
                raise DataError(
                    f"{src}: {kind} {name!r} not found; columns are {', '.join(map(str, frame.columns))}"
                    + (" (choose one with --column)" if len(needed) == 1 else "")
                )
        target = Path(out) if out else Path.cwd() / f"{src.stem}.predictions.csv"
        if target.suffix.lower() not in (".csv", ".jsonl"):
            raise UsageError(f"{target}: predictions are written as .csv or .jsonl")
        result = predictor.predict_frame(frame, column, progress, source=str(src))
        with atomic_path(target) as tmp:
            if target.suffix.lower() == ".jsonl":
                result.to_json(tmp, orient="records", lines=True, force_ascii=False)
            else:
                result.to_csv(tmp, index=False)
        return target, len(result)

    # --- deployments (serving) -----------------------------------------------------------

    def deploy(
        self, model: str, name: str, *, optimize: str | None = None, pin: bool = False
    ) -> DeploymentInfo:
        """Point deployment `name` at `model` (created, or re-pointed atomically)."""
        return ops_deployments.deploy(self.context, model, name, optimize, pin)

    def undeploy(self, name: str) -> DeploymentInfo:
        return ops_deployments.undeploy(self.context, name)

    def deployments(self) -> list[DeploymentInfo]:
        return ops_deployments.deployments(self.context)

    def deployment(self, name: str) -> DeploymentInfo:
        return ops_deployments.deployment(self.context, name)

    # --- feedback ------------------------------------------------------------------------

    def import_feedback(
        self, path: str | os.PathLike[str], deployment: str, *, new_labels: bool = False
    ) -> dict[str, Any]:
        """Import a CSV/JSONL file of feedback (request_id + label/rating/answer, or the
        model's input columns + label for new data), all rows or none."""
        from llmos.serve.feedback import import_feedback

        return import_feedback(self.store, Path(path), deployment, new_labels)

    def feedback(self, deployment: str, limit: int | None = None) -> pd.DataFrame:
        """Feedback events of a deployment, newest first."""
        from llmos.store.feedback import list_feedback

        self.deployment(deployment)
        return list_feedback(self.store, deployment, limit)

    def labelled_feedback(self, deployment: str, after_id: int = 0) -> pd.DataFrame:
        """Corrected labels (or answers) with the inputs they refer to, oldest first."""
        from llmos.store.feedback import labelled_feedback

        return labelled_feedback(self.store, deployment, after_id)

    def monitor(
        self, deployment: str, *, png: str | os.PathLike[str] | None = None, **options: Any
    ) -> DriftReport:
        """Drift, stability and feedback accuracy of a deployment's recent traffic
        (`llmos.adapt.monitor.drift_report` options), with an optional PNG chart."""
        from llmos.adapt.monitor import drift_report
        from llmos.adapt.monitor_chart import plot_report

        report = drift_report(self.store, deployment, **options)
        if png is not None and report.windows:
            with atomic_path(Path(png)) as tmp:
                plot_report(report, tmp)
        return report

    def submit_adapt(
        self,
        deployment: str,
        *,
        data: str | None = None,
        cpus: int = 1,
        start_kernel: bool = True,
        **settings: Any,
    ) -> Job:
        """Queue `llmos adapt`: continual fine-tuning of the deployed model on its new
        feedback (or the labelled rows of dataset `data`) with replay; the job's gate
        promotes or rejects the candidate. `settings` are `AdaptSettings` fields (epochs,
        replay_ratio, ewc, lwf, holdout, tolerance, new_labels, lr, seed). No new feedback
        raises `UsageError` and queues nothing."""
        from llmos.adapt.continual import AdaptSettings
        from llmos.adapt.jobs import submit_adapt

        try:
            config = AdaptSettings(**settings)
        except TypeError as exc:
            raise UsageError(f"adapt settings: {exc}") from None
        job = submit_adapt(self.store, deployment, config, data, cpus=cpus)
        if start_kernel:
            from llmos.kernel.scheduler import ensure_kernel

            ensure_kernel(self.settings)
        return job

    def adapt(self, deployment: str, *, data: str | None = None, **settings: Any) -> dict[str, Any]:
        """`submit_adapt`, then wait: the gate's decision, candidate, parent, reasons and metrics."""
        job = self.wait_job(self.submit_adapt(deployment, data=data, **settings).id)
        if job.state != "succeeded":
            raise JobError(f"adapt job {job.id} {job.state}: {job.error}")
        return {"job": job.id, **(job.result or {})}

    def rollback(self, deployment: str, reason: str = "") -> dict[str, Any]:
        """Re-point `deployment` to the model it served before its latest re-point (recorded)."""
        import getpass

        from llmos.store.adaptation import decision_info, rollback_deployment

        return decision_info(rollback_deployment(self.store, deployment, getpass.getuser(), reason))

    def adapt_history(self, deployment: str) -> list[dict[str, Any]]:
        """Every promote / reject / rollback decision of `deployment`, oldest first."""
        from llmos.store.adaptation import decision_info, list_decisions
        from llmos.store.deployments import get_deployment

        get_deployment(self.store, deployment)  # an unknown name is an error, not an empty history
        return [decision_info(d) for d in list_decisions(self.store, deployment)]

    def suggest_labels(
        self,
        dataset: str,
        model: str,
        k: int,
        strategy: str = "margin",
        out: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """`llmos label suggest`: the k rows of `dataset` most worth labelling for `model`."""
        from llmos.adapt.active import suggest_rows

        return suggest_rows(self.store, dataset, model, k, strategy, None if out is None else Path(out))

    def _evaluate_optimized(
        self, model: str, data: str, optimize: str, progress: Progress | None
    ) -> dict[str, Any]:
        from llmos.train.predict import Predictor

        row = self.model(model)
        if row.task == "generation":
            raise UsageError(f"--optimize applies to classifiers; {row.ref} is a generation model")
        frame = self.dataset_frame(self.dataset(data).ref)
        source = f"dataset {self.dataset(data).ref}"
        baseline = self.predictor(row.ref).evaluate(frame, source, progress)
        fast = Predictor.from_folder(self.model_path(row.ref), self.settings.artifacts_dir, optimize=optimize)
        metrics = fast.evaluate(frame, source, progress)
        change = round(metrics["accuracy"] - baseline["accuracy"], 5)
        metrics["optimized"] = {
            "optimize": optimize,
            "baseline_accuracy": baseline["accuracy"],
            "accuracy_change": change,
        }
        return metrics


def _read_inputs(src: Path, needed: list[str]) -> pd.DataFrame:
    """The rows to predict: a table, a .txt file (one value a line) or a folder of images
    (one row per image) for single-input models."""
    from llmos.store.datasets import detect_format, read_table
    from llmos.store.images import list_images

    if src.is_dir():
        images = list_images(src)
        if not images:
            raise DataError(f"{src}: no image files in this folder")
        if len(needed) > 1:
            raise UsageError(f"{src}: a folder of images is for single-input models")
        return pd.DataFrame({needed[0]: [str(p.resolve()) for p in images]})
    if src.suffix.lower() == ".txt":
        if not src.exists():
            raise NotFoundError(f"{src}: no such file")
        try:
            lines = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as exc:
            raise DataError(f"{src}: not UTF-8 text (invalid byte at offset {exc.start})") from exc
        if not lines:
            raise DataError(f"{src}: the file is empty")
        if len(needed) > 1:
            raise UsageError(f"{src}: a .txt file is for single-input models")
        return pd.DataFrame({needed[0]: lines})
    return read_table(src, detect_format(src, None))
