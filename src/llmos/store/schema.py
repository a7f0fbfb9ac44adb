"""Tables of the metadata database (SQLAlchemy 2 typed ORM).

Changing a table means adding an alembic migration in `migrations/versions/`: every
database, new or old, reaches the shape of these classes by running those files (a test
checks that a migrated database has exactly the shape these classes declare).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from llmos.core.util import utcnow
from llmos.store.crypto import SealedJSON, SealedText


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class SchemaVersion(Base):
    """The hand-written runner's version row (releases before alembic): kept, at 8, so that
    such a release refuses a database that alembic has moved on."""

    __tablename__ = "llmos_schema"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class DatasetVersion(Base):
    """One immutable version of an imported dataset (`name@version`)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        UniqueConstraint("name", "content_hash"),
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


class ModelVersion(Base):
    """One registered model (`name@version`): its spec, lineage, metrics and artifacts."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

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

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")


class Job(Base):
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


class PredictionSet(Base):
    """One versioned batch-prediction artifact (`name@version`, a Parquet blob): the
    predictions of a model version over a dataset version."""

    __tablename__ = "prediction_sets"
    __table_args__ = (UniqueConstraint("name", "version"),)

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


class Deployment(Base):
    """A served name pointing at a model (`NAME@V`, or a zoo alias/folder for pretrained
    LMs and embedders). Re-pointing updates this one row, so a server sees either the old
    or the new model, never a mix; `revision` counts the updates."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
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


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit log (see `store/audit.py`).
    `at` and `detail` are stored as the exact strings that were hashed."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(1024))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class ServedRequest(Base):
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


class Feedback(Base):
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


class MonitorAlert(Base):
    """One threshold crossed by one window of a deployment's traffic (`llmos monitor`).
    A window is named by the last served request in it, so an alert fires once."""

    __tablename__ = "monitor_alerts"
    __table_args__ = (UniqueConstraint("deployment", "check", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment: Mapped[str] = mapped_column(String(128), index=True)
    model: Mapped[str] = mapped_column(String(1024))
    check: Mapped[str] = mapped_column(String(32))  # drift | labels | confidence | accuracy
    window_end: Mapped[int] = mapped_column(Integer)  # served_requests.id of the window's last row
    value: Mapped[float] = mapped_column()
    threshold: Mapped[float] = mapped_column()
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEvent(Base):
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


class AdaptDecision(Base):
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


class Schedule(Base):
    """A periodic job: every `every_s` seconds or on a cron expression, the kernel submits
    the job (`kind` and its `payload`, as a manual submission would) acting as `created_by`.
    A firing is claimed by a conditional UPDATE of `next_run_at`, so it happens once however
    many schedulers watch the table; the next run is the first occurrence after the firing,
    so a schedule missed during downtime runs once, not once per missed period."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
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
