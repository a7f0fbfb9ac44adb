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

from llmos.apps.watch import operations as watch_ops
from llmos.apps.watch.operations import (
    IngestReceipt,
    WatchAlertInfo,
    WatchInfo,
    WatchPlot,
    WatchSeries,
    WatchStatus,
    WatchTextInfo,
)
from llmos.core.progress import Progress
from llmos.core.settings import Settings
from llmos.ops import adaptation as ops_adaptation
from llmos.ops import audit as ops_audit
from llmos.ops import datasets as ops_datasets
from llmos.ops import deployments as ops_deployments
from llmos.ops import feedback as ops_feedback
from llmos.ops import keys as ops_keys
from llmos.ops import knowledge as ops_knowledge
from llmos.ops import llm as ops_llm
from llmos.ops import models as ops_models
from llmos.ops import monitoring as ops_monitoring
from llmos.ops import predict as ops_predict
from llmos.ops import projects as ops_projects
from llmos.ops import schedules as ops_schedules
from llmos.ops import specs as ops_specs
from llmos.ops import support as ops_support
from llmos.ops import tracking as ops_tracking
from llmos.ops import training as ops_training
from llmos.ops import users as ops_users
from llmos.ops import workspace as ops_workspace
from llmos.ops.adaptation import AdaptJob, AdaptPlan, AdaptResult, Decision, LabelSuggestions
from llmos.ops.audit import AuditEventInfo, AuditVerdict
from llmos.ops.context import Actor, Context
from llmos.ops.datasets import DatasetInfo, DatasetRows, ImportInfo
from llmos.ops.deployments import DeploymentInfo, TrafficInfo
from llmos.ops.feedback import FeedbackEvent, FeedbackImport, FeedbackReceipt, LabelledFeedback
from llmos.ops.jobs import JobInfo
from llmos.ops.keys import EncryptionEnabled, EncryptionStatus, KeyRotation
from llmos.ops.knowledge import CollectionInfo, ImportedCollection, SearchResult
from llmos.ops.models import Lineage, ModelFile, ModelInfo, ZooModel
from llmos.ops.monitoring import AlertInfo, MonitorReport
from llmos.ops.predict import Predictions
from llmos.ops.projects import ProjectInfo
from llmos.ops.recommend import Recommendations
from llmos.ops.schedules import ScheduleInfo
from llmos.ops.specs import SpecCheck, spec_text
from llmos.ops.support import AssistantInfo, HandoffInfo, SupportReply, SupportSessionInfo
from llmos.ops.tracking import ExportedRun, RunMetrics
from llmos.ops.users import NewToken, TokenInfo, UserInfo
from llmos.sdk.jobs import JobsMixin
from llmos.spec.schema import TaskSpec

if TYPE_CHECKING:  # torch and pandas stay out of `import llmos`
    import pandas as pd

    from llmos.models.generation import Completion, SamplingParams
    from llmos.models.llm import LLM
    from llmos.store.db import Store
    from llmos.train.predict import Predictor
    from llmos.train.run import TrainOutcome


class Workspace(JobsMixin):
    """The local entry: each method is one call into `llmos.ops` as the local admin
    (`local:<os user>`); `llmos.Client` offers the same methods over HTTP."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        actor: Actor | None = None,
        project: str | None = None,
    ) -> None:
        self.settings = Settings.resolve(home)
        # the project every call acts in (F17): `project=`, else LLMOS_PROJECT, else default
        self.project = ops_projects.project_named(project or os.environ.get("LLMOS_PROJECT"))
        ops_audit.install_redactor()  # audit entries go through the PII redactor
        self._store: Store | None = None
        self._actor = actor
        self._context: Context | None = None

    @property
    def context(self) -> Context:
        """The `llmos.ops` context of this workspace's calls."""
        if self._context is None:
            self._context = Context(self.store, self._actor, self.project)
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

    # projects (F17)

    def projects(self) -> list[ProjectInfo]:
        return ops_projects.projects(self.context)

    def project_show(self, name: str) -> ProjectInfo:
        return ops_projects.project_show(self.context, name)

    def project_create(self, name: str, description: str = "") -> ProjectInfo:
        return ops_projects.project_create(self.context, name, description)

    def project_delete(self, name: str) -> ProjectInfo:
        return ops_projects.project_delete(self.context, name)

    def project_member_add(self, name: str, user: str, role: str = "developer") -> ProjectInfo:
        return ops_projects.project_member_add(self.context, name, user, role)

    def project_member_remove(self, name: str, user: str) -> ProjectInfo:
        return ops_projects.project_member_remove(self.context, name, user)

    def project_quota(
        self,
        name: str,
        max_concurrent_jobs: int | None = None,
        cpu_minutes_per_day: float | None = None,
        requests_per_day: int | None = None,
        max_stored_bytes: int | None = None,
        gpu_hours_per_day: float | None = None,
    ) -> ProjectInfo:
        return ops_projects.project_quota(
            self.context,
            name,
            max_concurrent_jobs,
            cpu_minutes_per_day,
            requests_per_day,
            max_stored_bytes,
            gpu_hours_per_day,
        )

    def suspend_token(self, token: str, resume: bool = False) -> TokenInfo:
        return ops_users.suspend_token(self.context, token, resume)

    def suspend_user(self, name: str, resume: bool = False) -> UserInfo:
        return ops_users.suspend_user(self.context, name, resume)

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

    def audit_events(
        self, since: datetime | None = None, limit: int | None = None, project: str | None = None
    ) -> list[AuditEventInfo]:
        """Audit events, oldest first (of one `project`); with `limit`, the newest N."""
        return ops_audit.audit_events(self.context, since, limit, project)

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

    def models(self, name: str | None = None, limit: int | None = None, offset: int = 0) -> list[ModelInfo]:
        return ops_models.models(self.context, name, limit, offset)

    def model(self, ref: str) -> ModelInfo:
        return ops_models.model(self.context, ref)

    def share_model(self, ref: str, project: str) -> ModelInfo:
        """Publish a model version to another project, read-only (lineage and audit say so)."""
        return ops_models.share_model(self.context, ref, project)

    def lineage(self, ref: str) -> Lineage:
        """The dataset versions a model was trained and tested on."""
        return ops_models.lineage(self.context, ref)

    def model_files(self, ref: str) -> list[ModelFile]:
        """The files of a model's report (metrics.json, confusion_matrix.png, ...) and its spec."""
        return ops_models.model_files(self.context, ref)

    def model_file(self, ref: str, path: str) -> bytes:
        """The bytes of one of `model_files` (decrypted in an encrypted workspace)."""
        return ops_models.model_file(self.context, ref, path)

    def run_metrics(self, ref: str, names: list[str] | None = None) -> RunMetrics:
        """A registered run's per-step metrics (loss, lr, samples_per_s, val_*)."""
        return ops_tracking.run_metrics(self.context, ref, names)

    def export_run(self, ref: str, to: str) -> ExportedRun:
        """Write a registered run to the MLflow tracking store at `to`."""
        return ops_tracking.export_run(self.context, ref, to)

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

    def predict_model(
        self, model: str, inputs: list[Any], progress: Progress | None = None, explain: bool = False
    ) -> Predictions:
        """`predict` as a result model: the answering model's NAME@V and the predictions
        (with `explain`, each with its per-token `explanation`: text classifiers)."""
        return ops_predict.predict(self.context, model, inputs, progress, explain)

    def predict_deployment(
        self, deployment: str, inputs: list[Any], progress: Progress | None = None
    ) -> Predictions:
        """Predictions of what a deployment serves, run as it runs it (its `--optimize`
        copy: ONNX Runtime or int8), with the answering model's NAME@V."""
        return ops_predict.predict_deployment(self.context, deployment, inputs, progress)

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

    def traffic(self, name: str, seconds: int = 900) -> TrafficInfo:
        """Recent traffic is counted by a running server: over HTTP, `Client.traffic`;
        here (no server) it says so."""
        return ops_deployments.traffic(self.context, name, seconds)

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

    # --- the customer-service assistant (ops.support) ------------------------------------

    def support_create(self, name: str, config: dict[str, Any] | None = None) -> AssistantInfo:
        """Create (or reconfigure) assistant `name`: deployments, collection, thresholds."""
        return ops_support.support_create(self.context, name, config)

    def support_assistants(self) -> list[AssistantInfo]:
        return ops_support.support_assistants(self.context)

    def support_open(self, assistant: str) -> SupportSessionInfo:
        return ops_support.support_open(self.context, assistant)

    def support_ask(self, session: str, message: str) -> SupportReply:
        """One turn: a FAQ answer, a generated answer with citations, or a hand-off."""
        return ops_support.support_ask(self.context, session, message)

    def support_session(self, session: str) -> SupportSessionInfo:
        return ops_support.support_session(self.context, session)

    def support_handoffs(self, assistant: str | None = None) -> list[HandoffInfo]:
        return ops_support.support_handoffs(self.context, assistant)

    # --- knowledge collections --------------------------------------------------------

    def import_collection(
        self,
        paths: list[str | os.PathLike[str]],
        name: str,
        *,
        chunk_size: int = ops_knowledge.DEFAULT_CHUNK_SIZE,
        chunk_overlap: int = ops_knowledge.DEFAULT_CHUNK_OVERLAP,
        encoder: str = "minilm",
        question: str = "question",
        answer: str = "answer",
        pii: str = "off",
    ) -> ImportedCollection:
        """Import files (FAQ CSV/JSONL, Markdown, HTML, text, PDF, zip) as a collection version."""
        return ops_knowledge.import_collection(
            self.context,
            paths,
            name,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            encoder=encoder,
            question=question,
            answer=answer,
            pii=pii,
        )

    def collections(self, name: str | None = None) -> list[CollectionInfo]:
        return ops_knowledge.collections(self.context, name)

    def collection(self, ref: str) -> CollectionInfo:
        return ops_knowledge.collection(self.context, ref)

    def search_collection(
        self,
        name: str,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        fusion: str = "rrf",
        weight: float = 0.5,
        filters: dict[str, Any] | None = None,
    ) -> SearchResult:
        """The k chunks of a collection that best answer `query` (hybrid, dense or bm25)."""
        return ops_knowledge.search_collection(
            self.context, name, query, k=k, mode=mode, fusion=fusion, weight=weight, filters=filters
        )

    def add_documents(
        self,
        name: str,
        paths: list[str | os.PathLike[str]],
        *,
        question: str = "question",
        answer: str = "answer",
        pii: str = "off",
    ) -> CollectionInfo:
        """The next version of a collection with these files added (same source: replaced)."""
        return ops_knowledge.add_documents(
            self.context, name, paths, question=question, answer=answer, pii=pii
        )

    def delete_documents(self, name: str, sources: list[str]) -> CollectionInfo:
        """The next version of a collection without the documents of `sources`."""
        return ops_knowledge.delete_documents(self.context, name, sources)

    # --- recommendations ------------------------------------------------------------------

    def recommend(
        self,
        deployment: str,
        user: str | None = None,
        items: list[str] | None = None,
        k: int = 10,
        exclude: list[str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Recommendations:
        """The top `k` items of a deployed recommender for `user` (or a session of recent
        `items`); seen and `exclude`d items are never returned, unknown users get the
        cold-start (popularity) answer."""
        from llmos.ops.recommend import recommend

        return recommend(self.context, deployment, user, items, k, exclude, filters)

    # --- opinion watches (apps.watch) ------------------------------------------------

    def create_watch(
        self,
        name: str,
        classifier: str,
        *,
        entities: str | None = None,
        topics: list[str] | str | dict[str, list[str]] | None = None,
        topic_column: str | None = None,
        bucket: str = "hour",
        negative: str | None = None,
        text_column: str = "text",
        time_column: str = "timestamp",
        id_column: str = "id",
        detector: dict[str, Any] | None = None,
        webhook: str | None = None,
    ) -> WatchInfo:
        """Watch texts scored by classifier deployment `classifier`, by topic and entity."""
        return watch_ops.create_watch(
            self.context, name, classifier, entities=entities, topics=topics, topic_column=topic_column,
            bucket=bucket, negative=negative, text_column=text_column, time_column=time_column,
            id_column=id_column, detector=detector, webhook=webhook,
        )  # fmt: skip

    def watches(self) -> list[WatchInfo]:
        return watch_ops.watches(self.context)

    def watch_status(self, name: str) -> WatchStatus:
        return watch_ops.watch_status(self.context, name)

    def ingest_watch(self, name: str, rows: list[dict[str, Any]]) -> IngestReceipt:
        return watch_ops.ingest_watch(self.context, name, rows)

    def ingest_watch_file(self, name: str, path: str | os.PathLike[str]) -> IngestReceipt:
        return watch_ops.ingest_watch_file(self.context, name, path)

    def backfill_watch(
        self, name: str, data: str, *, cpus: int = 1, start_kernel: bool = True, backend: str = "local",
        workers: int = 2,
    ) -> JobInfo:  # fmt: skip
        """Queue a kernel job that ingests dataset version `data` into the watch (`backend="ray"`:
        the texts are scored on Ray Data by `workers` actors)."""
        return watch_ops.backfill_watch(
            self.context, name, data, cpus=cpus, start_kernel=start_kernel, backend=backend, workers=workers
        )

    def watch_series(self, name: str, series: str = "all") -> WatchSeries:
        return watch_ops.watch_series(self.context, name, series)

    def watch_texts(
        self, name: str, bucket: str | datetime | None = None, series: str = "all", limit: int = 20
    ) -> list[WatchTextInfo]:
        return watch_ops.watch_texts(self.context, name, bucket, series, limit)

    def watch_alerts(self, name: str, open_only: bool = False) -> list[WatchAlertInfo]:
        return watch_ops.watch_alerts(self.context, name, open_only)

    def ack_watch_alert(self, name: str, alert_id: int) -> WatchAlertInfo:
        return watch_ops.ack_watch_alert(self.context, name, alert_id)

    def plot_watch(
        self, name: str, series: str = "all", png: str | os.PathLike[str] | None = None
    ) -> WatchPlot:
        return watch_ops.plot_watch(self.context, name, series, png)
