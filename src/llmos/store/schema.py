"""Tables of the metadata database (SQLAlchemy 2 typed ORM).

Changing a table means adding an alembic migration in `migrations/versions/`: every
database, new or old, reaches the shape of these classes by running those files (a test
checks that a migrated database has exactly the shape these classes declare).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from llmos.core.util import utcnow
from llmos.store.crypto import SealedJSON, SealedText
from llmos.store.scope import Scoped, current_project


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


def project_column() -> Mapped[str]:
    """The project a row belongs to (`store.scope`): filled from the current project."""
    return mapped_column(String(64), default=current_project, server_default="default")


class SchemaVersion(Base):
    """The hand-written runner's version row (releases before alembic): kept, at 8, so that
    such a release refuses a database that alembic has moved on."""

    __tablename__ = "llmos_schema"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class DatasetVersion(Scoped, Base):
    """One immutable version of an imported dataset (`name@version`)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("project", "name", "version"),
        UniqueConstraint("project", "name", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(1024))
    num_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    label_column: Mapped[str | None] = mapped_column(String(256), nullable=True)
    label_distribution: Mapped[dict[str, Any] | None] = mapped_column(
        SealedJSON("dataset_versions.label_distribution"), nullable=True
    )
    artifact: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class ModelVersion(Scoped, Base):
    """One registered model (`name@version`): its spec, lineage, metrics and artifacts."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(64))
    base_model: Mapped[str] = mapped_column(String(1024))
    method: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    train_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    test_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"), nullable=True)
    split: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifacts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    train_seconds: Mapped[float] = mapped_column(default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    # F17: a read-only copy published from another project (`PROJECT/NAME@V`); its files are the same blobs
    shared_from: Mapped[str | None] = mapped_column(String(1024), nullable=True)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")


class Job(Scoped, Base):
    """One long operation the kernel schedules: a training run, an evaluation, a batch
    prediction. The queue is this table, so it survives a restart of the scheduler."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    handler: Mapped[str] = mapped_column(String(256))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    cpus: Mapped[int] = mapped_column(Integer, default=1)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    threads: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(SealedText("jobs.error"), nullable=True)
    log_path: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    host: Mapped[str | None] = mapped_column(String(256), nullable=True)  # the claiming scheduler's

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class PredictionSet(Scoped, Base):
    """One versioned batch-prediction artifact (`name@version`, a Parquet blob): the
    predictions of a model version over a dataset version."""

    __tablename__ = "prediction_sets"
    __table_args__ = (UniqueConstraint("project", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True, index=True)
    num_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    artifact: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Deployment(Scoped, Base):
    """A served name pointing at a model (`NAME@V`, or a zoo alias/folder for pretrained
    LMs and embedders). Re-pointing updates this one row, so a server sees either the old
    or the new model, never a mix; `revision` counts the updates."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(32))  # classifier | generation | embedding
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataKey(Base):
    """The data key of one encrypted object (a blob, or `fields` for sealed database
    values), wrapped by the master key `key_id` (see `store.crypto`)."""

    __tablename__ = "data_keys"

    object: Mapped[str] = mapped_column(String(128), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person or service that holds tokens (F5 security). Removing a user keeps the row
    (the audit log names it) and revokes every token it holds."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    suspended_at: Mapped[datetime | None] = mapped_column(
        nullable=True
    )  # F17: its tokens refused until resumed


class ApiToken(Base):
    """A bearer token: only its SHA-256 is kept; `prefix` identifies it in lists and logs."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    deployments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    suspended_at: Mapped[datetime | None] = mapped_column(nullable=True)  # F17: refused until resumed


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log (see `store/audit.py`).
    `at` and `detail` are stored as the exact strings that were hashed."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = project_column()
    at: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(1024))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class ServedRequest(Scoped, Base):
    """One input of a served request: what a deployment was asked and answered, so that
    feedback can name it (`request_id`, `idx`). Written in batches off the request path
    (`serve.requestlog`); `inputs` is a JSON object of the model's input columns and
    `output` the JSON answer (label and confidence, or generated text)."""

    __tablename__ = "served_requests"
    __table_args__ = (UniqueConstraint("request_id", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    idx: Mapped[int] = mapped_column(Integer, default=0)
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    model: Mapped[str] = mapped_column(String(1024))
    inputs: Mapped[str] = mapped_column(SealedText("served_requests.inputs"))
    output: Mapped[str] = mapped_column(SealedText("served_requests.output"))
    label: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    confidence: Mapped[float | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Scoped, Base):
    """One feedback event on a deployment: a correct label, a rating (1-5) or a corrected
    answer for a served request (`served_id`), or a labelled new row (`inputs`) imported
    without a request id. `model` is the version that answered."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    served_id: Mapped[int | None] = mapped_column(ForeignKey("served_requests.id"), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    idx: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    inputs: Mapped[str | None] = mapped_column(SealedText("feedback.inputs"), nullable=True)
    label: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answer: Mapped[str | None] = mapped_column(SealedText("feedback.answer"), nullable=True)
    predicted: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitorAlert(Scoped, Base):
    """One threshold crossed by one window of a deployment's traffic (`llmos monitor`).
    A window is named by the last served request in it, so an alert fires once."""

    __tablename__ = "monitor_alerts"
    __table_args__ = (UniqueConstraint("project", "deployment", "check", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    model: Mapped[str] = mapped_column(String(1024))
    check: Mapped[str] = mapped_column(String(32))  # drift | labels | confidence | accuracy
    window_end: Mapped[int] = mapped_column(Integer)  # served_requests.id of the window's last row
    value: Mapped[float] = mapped_column()
    threshold: Mapped[float] = mapped_column()
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEvent(Scoped, Base):
    """One re-pointing of a deployment (deploy, promote, rollback): from which model to
    which, who did it and why. `llmos rollback` walks this history back."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(16))  # deploy | promote | rollback
    from_model: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    to_model: Mapped[str] = mapped_column(String(1024))
    actor: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdaptDecision(Scoped, Base):
    """One decision about a deployment's model: a candidate promoted or rejected by the
    gate, or a rollback; with its reasons, the metrics it rests on and the feedback used."""

    __tablename__ = "adapt_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # promote | reject | rollback
    candidate: Mapped[str] = mapped_column(String(1024))  # the model the decision is about
    parent: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # what was deployed
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_feedback_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Schedule(Scoped, Base):
    """A periodic job: every `every_s` seconds or on a cron expression, the kernel submits
    the job (`kind` and its `payload`, as a manual submission would) acting as `created_by`.
    A firing is claimed by a conditional UPDATE of `next_run_at`, so it happens once however
    many schedulers watch the table; the next run is the first occurrence after the firing,
    so a schedule missed during downtime runs once, not once per missed period."""

    __tablename__ = "schedules"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # adapt | train | eval | predict
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    command: Mapped[str] = mapped_column(Text, default="")  # the job as the user wrote it
    every_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cron: Mapped[str | None] = mapped_column(String(128), nullable=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    next_run_at: Mapped[datetime] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_outcome: Mapped[str | None] = mapped_column(Text, nullable=True)  # queued job N, skipped: ...
    runs: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16), default="admin")  # the creator's, which firings act with
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Project(Base):
    """A namespace of datasets, models, deployments, jobs and the rest (F17): names are
    unique per project, and a user's role is given per project (`ProjectMember`). Its
    quotas (None: no limit) are checked by the kernel (jobs, CPU-minutes, GPU-hours) and the server
    (requests); `default` holds everything made before projects."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    max_concurrent_jobs: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cpu_minutes_per_day: Mapped[float | None] = mapped_column(nullable=True)
    gpu_hours_per_day: Mapped[float | None] = mapped_column(nullable=True)
    requests_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_stored_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    """A user's role in one project (admins have every project without a row)."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UsageCounter(Base):
    """A counter shared by every process over the database: requests of a token or a
    project per day or per second, CPU-seconds of a project's jobs per day, failed
    authentications of an address per minute. `key` names what is counted
    (`project:P:requests`), `window` the period (`2026-12-01`); one atomic upsert adds."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("key", "window"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default")
    key: Mapped[str] = mapped_column(String(256))
    window: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportAssistant(Base):
    """A customer-service assistant (F10): which intent deployment, knowledge collection,
    reranker and generation deployment it uses, and its thresholds (`config`)."""

    __tablename__ = "support_assistants"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    name: Mapped[str] = mapped_column(String(128))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportSession(Base):
    """One conversation with an assistant: open until it is handed off to a person."""

    __tablename__ = "support_sessions"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    name: Mapped[str] = mapped_column(String(64))  # the session id users see (sess-...)
    assistant: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | handed-off
    turns: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportTurn(Base):
    """One message of a session: the user's, or the assistant's with what it did."""

    __tablename__ = "support_turns"
    __table_args__ = (UniqueConstraint("project", "session", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    session: Mapped[str] = mapped_column(String(64), index=True)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user | assistant
    text: Mapped[str] = mapped_column(SealedText("support_turns.text"))
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)  # faq | generated | handoff
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[Any] = mapped_column(SealedJSON("support_turns.details"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportHandoff(Base):
    """A session handed to a person: why, and the transcript up to that point."""

    __tablename__ = "support_handoffs"
    __table_args__ = (UniqueConstraint("project", "session"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    session: Mapped[str] = mapped_column(String(64))
    assistant: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))  # low-confidence | out-of-scope | ...
    detail: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[Any] = mapped_column(SealedJSON("support_handoffs.transcript"))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeVersion(Base):
    """One immutable version of a knowledge collection (`name@version`): its documents,
    chunking, encoder and the blobs of its index (chunks, embeddings, BM25), per project.
    Adding or deleting documents makes the next version from the one it changes."""

    __tablename__ = "knowledge_versions"
    __table_args__ = (UniqueConstraint("project", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    encoder: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # None: BM25 only
    chunk_size: Mapped[int] = mapped_column(Integer)
    chunk_overlap: Mapped[int] = mapped_column(Integer)
    num_documents: Mapped[int] = mapped_column(Integer)
    num_chunks: Mapped[int] = mapped_column(Integer)
    documents: Mapped[list[Any]] = mapped_column(SealedJSON("knowledge_versions.documents"))
    artifacts: Mapped[dict[str, Any]] = mapped_column(JSON)  # {blob name: sha256}
    size_bytes: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(256), default="import")
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class Watch(Base):
    """An opinion watch (F11): timestamped texts scored by a classifier deployment, cut by
    topic and entity into fixed buckets, watched for spikes and level shifts."""

    __tablename__ = "watches"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    name: Mapped[str] = mapped_column(String(128))
    classifier: Mapped[str] = mapped_column(String(128))  # a classifier deployment
    entities: Mapped[str | None] = mapped_column(String(128), nullable=True)  # an NER deployment
    negative: Mapped[str] = mapped_column(String(128))  # the classifier's negative label
    topics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # topic -> keywords
    topic_column: Mapped[str | None] = mapped_column(String(128), nullable=True)
    bucket: Mapped[str] = mapped_column(String(8))  # minute | hour | day
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # columns, detector, webhook
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchText(Base):
    """One ingested text of a watch with its sentiment, topics and entities. A client id
    is unique per watch, so a retried batch is not counted twice."""

    __tablename__ = "watch_texts"
    __table_args__ = (UniqueConstraint("watch_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    watch_id: Mapped[int] = mapped_column(Integer, index=True)
    client_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ts: Mapped[datetime] = mapped_column()
    bucket_start: Mapped[datetime] = mapped_column(index=True)
    text: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(128))
    negative: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column()  # the probability of the negative label
    topics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    entities: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchBucket(Base):
    """One bucket of one series of a watch (`all`, `topic:NAME`, `entity:NAME`): how many
    texts, how many negative, and the sum of their negative scores. Written in the same
    transaction as the texts it counts."""

    __tablename__ = "watch_buckets"
    __table_args__ = (UniqueConstraint("watch_id", "series", "bucket_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    watch_id: Mapped[int] = mapped_column(Integer, index=True)
    series: Mapped[str] = mapped_column(String(256))
    bucket_start: Mapped[datetime] = mapped_column()
    volume: Mapped[int] = mapped_column(Integer, default=0)
    negative: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[float] = mapped_column(default=0.0)


class WatchSource(Base):
    """How far a watch has read a file (bytes), so that the next ingest reads only what
    was appended; moved in the same transaction as the texts read."""

    __tablename__ = "watch_sources"
    __table_args__ = (UniqueConstraint("watch_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    watch_id: Mapped[int] = mapped_column(Integer, index=True)
    path: Mapped[str] = mapped_column(String(1024))
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WatchAlert(Base):
    """One anomalous episode of one series and metric of a watch (`volume` or
    `negative_share`): unique by where the episode started, so it fires once."""

    __tablename__ = "watch_alerts"
    __table_args__ = (UniqueConstraint("watch_id", "series", "metric", "episode_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    watch_id: Mapped[int] = mapped_column(Integer, index=True)
    series: Mapped[str] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(32))  # volume | negative_share
    kind: Mapped[str] = mapped_column(String(32))  # spike | level_shift
    episode_start: Mapped[datetime] = mapped_column()
    bucket_start: Mapped[datetime] = mapped_column()  # the bucket it was detected in
    value: Mapped[float] = mapped_column()
    baseline: Mapped[float] = mapped_column()
    z: Mapped[float] = mapped_column()
    message: Mapped[str] = mapped_column(Text)
    examples: Mapped[list[Any]] = mapped_column(JSON, default=list)
    acked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RunMetric(Scoped, Base):
    """One per-step value of a training run (loss, lr, samples_per_s at an optimizer step;
    val_* at the last step of an epoch), written in one batch when the run registers, in
    the project of its model."""

    __tablename__ = "run_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow)
