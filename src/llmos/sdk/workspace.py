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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llmos.core.progress import Progress
from llmos.core.settings import Settings
from llmos.ops import adaptation as ops_adaptation
from llmos.ops import audit as ops_audit
from llmos.ops import datasets as ops_datasets
from llmos.ops import deployments as ops_deployments
from llmos.ops import feedback as ops_feedback
from llmos.ops import keys as ops_keys
from llmos.ops import llm as ops_llm
from llmos.ops import models as ops_models
from llmos.ops import monitoring as ops_monitoring
from llmos.ops import predict as ops_predict
from llmos.ops import schedules as ops_schedules
from llmos.ops import specs as ops_specs
from llmos.ops import training as ops_training
from llmos.ops import users as ops_users
from llmos.ops import workspace as ops_workspace
from llmos.ops.adaptation import AdaptJob, AdaptPlan, AdaptResult, Decision, LabelSuggestions
from llmos.ops.audit import AuditEventInfo, AuditVerdict
from llmos.ops.context import Actor, Context
from llmos.ops.datasets import DatasetInfo, DatasetRows, ImportInfo
from llmos.ops.deployments import DeploymentInfo
from llmos.ops.feedback import FeedbackEvent, FeedbackImport, FeedbackReceipt, LabelledFeedback
from llmos.ops.keys import EncryptionEnabled, EncryptionStatus, KeyRotation
from llmos.ops.models import Lineage, ModelFile, ModelInfo, ZooModel
from llmos.ops.monitoring import AlertInfo, MonitorReport
from llmos.ops.predict import Predictions
from llmos.ops.schedules import ScheduleInfo
from llmos.ops.specs import SpecCheck, spec_text
from llmos.ops.users import NewToken, TokenInfo, UserInfo
from llmos.sdk.jobs import JobsMixin
from llmos.spec.schema import TaskSpec

if TYPE_CHECKING:  # torch stays out of `import llmos`
    from llmos.models.generation import Completion, SamplingParams
    from llmos.models.llm import LLM
    from llmos.store.db import Store
    from llmos.train.predict import Predictor
    from llmos.train.run import TrainOutcome


class Workspace(JobsMixin):
    """The local entry: each method is one call into `llmos.ops` as the local admin
    (`local:<os user>`); `llmos.Client` offers the same methods over HTTP."""

    def __init__(self, home: str | os.PathLike[str] | None = None, actor: Actor | None = None) -> None:
        self.settings = Settings.resolve(home)
        ops_audit.install_redactor()  # audit entries go through the PII redactor
        self._store: Store | None = None
        self._actor = actor
        self._context: Context | None = None

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
            self._store = ops_workspace.open_store(self.settings)
        return self._store

    def init(self, encrypt: bool = False) -> Path:
        """Create the workspace (idempotent) and return its folder; `encrypt` turns
        encryption at rest on (`enable_encryption`)."""
        ops_workspace.init_folders(self.context)
        if encrypt:
            self.enable_encryption()
        return self.home

    # --- encryption at rest (ops.keys) -----------------------------------------------------

    def enable_encryption(self) -> EncryptionEnabled:
        return ops_keys.enable_encryption(self.context)

    def rotate_key(self, new_key_file: str | os.PathLike[str] | None = None) -> KeyRotation:
        return ops_keys.rotate_key(self.context, new_key_file)

    def encryption_status(self) -> EncryptionStatus:
        return ops_keys.encryption_status(self.context)

    # --- users, tokens and the audit log (ops.users, ops.audit) --------------------------

    def users(self) -> list[UserInfo]:
        return ops_users.users(self.context)

    def add_user(self, name: str, role: str = "developer") -> UserInfo:
        return ops_users.add_user(self.context, name, role)

    def remove_user(self, name: str) -> UserInfo:
        return ops_users.remove_user(self.context, name)

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        return ops_users.tokens(self.context, user)

    def create_token(
        self,
        user: str,
        role: str | None = None,
        expires: str | None = None,
        deployments: list[str] | None = None,
    ) -> NewToken:
        """A new token for `user`; the token itself is in the result only (`.token`)."""
        return ops_users.create_token(self.context, user, role, expires, deployments)

    def revoke_token(self, token: str | int) -> TokenInfo:
        return ops_users.revoke_token(self.context, str(token))

    def audit_events(self, since: datetime | None = None, limit: int | None = None) -> list[AuditEventInfo]:
        """Audit events, oldest first; with `limit`, the newest N."""
        return ops_audit.audit_events(self.context, since, limit)

    def verify_audit(self) -> AuditVerdict:
        return ops_audit.verify_audit(self.context)

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
        return ops_workspace.dataset_frame(self.context, ref)

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
        """The folder of a registered model's files (on this machine only)."""
        return ops_workspace.model_path(self.context, ref)

    # --- training and use ---------------------------------------------------------------

    def train(
        self,
        spec: str | os.PathLike[str] | dict[str, Any] | TaskSpec,
        progress: Progress | None = None,
    ) -> TrainOutcome:
        """Train in this process (`submit_train` queues a kernel job instead)."""
        return ops_training.train(self.context, spec, progress)

    def predictor(self, ref: str) -> Predictor:
        """The loaded predictor of a registered model (kept for the next call)."""
        return ops_workspace.predictor(self.context, ref)

    def predict(
        self, model: str, inputs: list[Any] | pd.DataFrame, progress: Progress | None = None
    ) -> list[dict[str, Any]]:
        """Predictions for texts (or image paths, ...) of a single-input model, or for rows
        given as dicts of column values (any model). `predict_model` returns them with the
        model's NAME@V, as `llmos.Client.predict_model` does."""
        return ops_predict.predict(self.context, model, inputs, progress).predictions

    def predict_model(self, model: str, inputs: list[Any], progress: Progress | None = None) -> Predictions:
        """`predict` as a result model: the answering model's NAME@V and the predictions."""
        return ops_predict.predict(self.context, model, inputs, progress)

    def evaluate(
        self, model: str, data: str, progress: Progress | None = None, optimize: str | None = None
    ) -> dict[str, Any]:
        """Metrics of `model` on `data`; with `optimize="int8"`, of its int8 version, with the
        full-precision accuracy and the difference under `metrics["optimized"]`."""
        return ops_predict.evaluate(self.context, model, data, optimize, progress).metrics

    # --- LLMs -------------------------------------------------------------------------

    def llm(self, ref: str, chat_template: str | None = None) -> LLM:
        """A generation model registered here, or a pretrained causal LM, loaded in this process
        (kept for the next call)."""
        return ops_llm.load_llm(self.context, ref, chat_template)

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
        return ops_llm.generate(
            self.context, model, prompts, params, system=system, raw=raw, stream=stream,
            chat_template=chat_template,
        )  # fmt: skip

    def export(self, model: str, fmt: str, out: str | os.PathLike[str]) -> Path:
        """Write a generation model as merged weights or as its adapter into the folder `out`."""
        return ops_llm.export(self.context, model, fmt, out)

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
        return ops_predict.predict_file(self.context, model, path, out, column, progress)

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

    # --- schedules (ops.schedules) -------------------------------------------------------

    def add_schedule(
        self,
        name: str,
        job: list[str] | str,
        *,
        every: str | int | None = None,
        cron: str | None = None,
        paused: bool = False,
        start_kernel: bool = True,
    ) -> ScheduleInfo:
        """Run `job` (`["adapt", "support", "--on-drift"]`) every `every` or on `cron`."""
        return ops_schedules.add_schedule(
            self.context, name, job, every=every, cron=cron, paused=paused, start_kernel=start_kernel
        )

    def schedules(self) -> list[ScheduleInfo]:
        return ops_schedules.schedules(self.context)

    def schedule(self, name: str) -> ScheduleInfo:
        return ops_schedules.schedule(self.context, name)

    def pause_schedule(self, name: str) -> ScheduleInfo:
        return ops_schedules.pause_schedule(self.context, name)

    def resume_schedule(self, name: str, start_kernel: bool = True) -> ScheduleInfo:
        return ops_schedules.resume_schedule(self.context, name, start_kernel)

    def remove_schedule(self, name: str) -> ScheduleInfo:
        return ops_schedules.remove_schedule(self.context, name)

    # --- feedback, monitoring, adaptation (ops.feedback, ops.monitoring, ops.adaptation) --

    def submit_feedback(
        self,
        deployment: str,
        request_id: str,
        *,
        index: int | None = None,
        label: str | None = None,
        rating: int | None = None,
        answer: str | None = None,
        new_label: bool = False,
    ) -> FeedbackReceipt:
        """The correct label, a rating (1-5) or a corrected answer for a served prediction."""
        return ops_feedback.submit_feedback(
            self.context, deployment, request_id, index=index, label=label, rating=rating,
            answer=answer, new_label=new_label,
        )  # fmt: skip

    def import_feedback(
        self, path: str | os.PathLike[str], deployment: str, *, new_labels: bool = False
    ) -> FeedbackImport:
        """Import a CSV/JSONL file of feedback (request_id + label/rating/answer, or the
        model's input columns + label for new data), all rows or none."""
        return ops_feedback.import_feedback(self.context, path, deployment, new_labels=new_labels)

    def feedback(self, deployment: str, limit: int | None = None) -> list[FeedbackEvent]:
        """Feedback events of a deployment, newest first."""
        return ops_feedback.feedback(self.context, deployment, limit)

    def labelled_feedback(self, deployment: str, after_id: int = 0) -> list[LabelledFeedback]:
        """Corrected labels (or answers) with the inputs they refer to, oldest first."""
        return ops_feedback.labelled_feedback(self.context, deployment, after_id)

    def monitor(
        self, deployment: str, *, png: str | os.PathLike[str] | None = None, **options: Any
    ) -> MonitorReport:
        """Drift, stability and feedback accuracy of a deployment's recent traffic
        (`llmos.ops.monitoring.monitor` options), with an optional PNG chart."""
        return ops_monitoring.monitor(self.context, deployment, png=png, **options)

    def alerts(self, deployment: str | None = None, limit: int | None = None) -> list[AlertInfo]:
        return ops_monitoring.alerts(self.context, deployment, limit)

    def submit_adapt(
        self,
        deployment: str,
        *,
        data: str | None = None,
        cpus: int = 1,
        start_kernel: bool = True,
        wait: bool = False,
        **settings: Any,
    ) -> AdaptJob:
        """Queue `llmos adapt` (see `llmos.ops.adaptation.submit_adapt`); no new feedback
        raises `UsageError` and queues nothing."""
        return ops_adaptation.submit_adapt(
            self.context, deployment, data=data, cpus=cpus, start_kernel=start_kernel, wait=wait, **settings
        )

    def adapt(
        self, deployment: str, *, data: str | None = None, cpus: int = 1, **settings: Any
    ) -> AdaptResult:
        """`submit_adapt`, then wait: the gate's decision, candidate, parent, reasons and metrics."""
        return ops_adaptation.adapt(self.context, deployment, data=data, cpus=cpus, **settings)

    def plan_adapt(self, deployment: str, *, data: str | None = None, **settings: Any) -> AdaptPlan:
        return ops_adaptation.plan_adapt(self.context, deployment, data=data, **settings)

    def rollback(self, deployment: str, reason: str = "") -> Decision:
        """Re-point `deployment` to the model it served before its latest re-point (recorded)."""
        return ops_adaptation.rollback(self.context, deployment, reason)

    def adapt_history(self, deployment: str) -> list[Decision]:
        """Every promote / reject / rollback decision of `deployment`, oldest first."""
        return ops_adaptation.adapt_history(self.context, deployment)

    def suggest_labels(
        self,
        dataset: str,
        model: str,
        k: int = 50,
        strategy: str = "margin",
        out: str | os.PathLike[str] | None = None,
    ) -> LabelSuggestions:
        """`llmos label suggest`: the k rows of `dataset` most worth labelling for `model`."""
        return ops_adaptation.suggest_labels(self.context, dataset, model, k, strategy, out)
