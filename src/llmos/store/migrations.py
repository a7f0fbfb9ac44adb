"""Schema versions of the metadata database.

A hand-written equivalent of alembic's "create_all, then stamp head" recipe, kept small
because llmos owns every table: a fresh database is created from `schema.Base` and
stamped with `LATEST`; an older one runs each migration it lacks, in order, inside one
transaction. To change a table, edit `schema.py` and append a function here that brings
an existing database to the new shape (for example `ALTER TABLE ... ADD COLUMN`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, inspect, select, text, update

from llmos.core.errors import StoreError
from llmos.store.schema import Base, SchemaVersion


def add_deployments(conn: Connection) -> None:
    """Version 2: the `deployments` table of `llmos deploy` / `llmos serve`."""
    from llmos.store.schema import Deployment

    Deployment.__table__.create(conn)  # type: ignore[attr-defined]


def _add_jobs_and_prediction_sets(conn: Connection) -> None:
    """Version 3 (F2 kernel): the job queue, batch-prediction artifacts, and the job
    that made each model version."""
    conn.execute(
        text(
            """CREATE TABLE jobs (
            id INTEGER NOT NULL, kind VARCHAR(32) NOT NULL, name VARCHAR(128) NOT NULL,
            handler VARCHAR(256) NOT NULL, payload JSON NOT NULL, state VARCHAR(16) NOT NULL,
            priority INTEGER NOT NULL, cpus INTEGER NOT NULL, gpus INTEGER NOT NULL,
            memory_mb INTEGER NOT NULL, threads INTEGER, attempts INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL, pid INTEGER, cancel_requested BOOLEAN NOT NULL,
            progress JSON NOT NULL, result JSON, error TEXT, log_path VARCHAR(1024) NOT NULL,
            created_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME,
            heartbeat_at DATETIME, PRIMARY KEY (id))"""
        )
    )
    conn.execute(text("CREATE INDEX ix_jobs_state ON jobs (state)"))
    conn.execute(
        text(
            """CREATE TABLE prediction_sets (
            id INTEGER NOT NULL, name VARCHAR(128) NOT NULL, version INTEGER NOT NULL,
            model_id INTEGER NOT NULL REFERENCES model_versions (id),
            dataset_id INTEGER NOT NULL REFERENCES dataset_versions (id),
            job_id INTEGER REFERENCES jobs (id), num_rows INTEGER NOT NULL, columns JSON NOT NULL,
            artifact VARCHAR(64) NOT NULL, size_bytes INTEGER NOT NULL, created_at DATETIME NOT NULL,
            PRIMARY KEY (id), UNIQUE (name, version))"""
        )
    )
    conn.execute(text("CREATE INDEX ix_prediction_sets_name ON prediction_sets (name)"))
    conn.execute(text("CREATE INDEX ix_prediction_sets_job_id ON prediction_sets (job_id)"))
    conn.execute(text("ALTER TABLE model_versions ADD COLUMN job_id INTEGER REFERENCES jobs (id)"))
    conn.execute(text("CREATE INDEX ix_model_versions_job_id ON model_versions (job_id)"))


def _add_data_keys(conn: Connection) -> None:
    """F5 encryption at rest: the wrapped data keys of encrypted objects."""
    from llmos.store.schema import DataKey

    DataKey.__table__.create(conn)  # type: ignore[attr-defined]


def _add_users_tokens_audit(conn: Connection) -> None:
    """F5 security: users, their hashed API tokens, and the hash-chained audit log."""
    conn.execute(
        text(
            """CREATE TABLE users (
            id INTEGER NOT NULL, name VARCHAR(128) NOT NULL, role VARCHAR(16) NOT NULL,
            created_at DATETIME NOT NULL, removed_at DATETIME, PRIMARY KEY (id), UNIQUE (name))"""
        )
    )
    conn.execute(
        text(
            """CREATE TABLE api_tokens (
            id INTEGER NOT NULL, user_id INTEGER NOT NULL REFERENCES users (id),
            role VARCHAR(16) NOT NULL, prefix VARCHAR(32) NOT NULL, token_hash VARCHAR(64) NOT NULL,
            deployments JSON NOT NULL, created_at DATETIME NOT NULL, expires_at DATETIME,
            revoked_at DATETIME, last_used_at DATETIME, PRIMARY KEY (id), UNIQUE (token_hash))"""
        )
    )
    conn.execute(text("CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id)"))
    conn.execute(
        text(
            """CREATE TABLE audit_events (
            id INTEGER NOT NULL, at VARCHAR(32) NOT NULL, actor VARCHAR(256) NOT NULL,
            action VARCHAR(64) NOT NULL, target VARCHAR(1024) NOT NULL, outcome VARCHAR(16) NOT NULL,
            detail TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL,
            PRIMARY KEY (id), UNIQUE (prev_hash))"""
        )
    )
    conn.execute(text("CREATE INDEX ix_audit_events_at ON audit_events (at)"))


def add_served_requests_and_feedback(conn: Connection) -> None:
    """F6 feedback and monitoring: the log of served requests, the feedback on them and
    the alerts of `llmos monitor`."""
    from llmos.store.schema import Feedback, MonitorAlert, ServedRequest

    ServedRequest.__table__.create(conn)  # type: ignore[attr-defined]
    Feedback.__table__.create(conn)  # type: ignore[attr-defined]
    MonitorAlert.__table__.create(conn)  # type: ignore[attr-defined]


def add_deployment_events_and_adapt_decisions(conn: Connection) -> None:
    """F6 adapt: the history of deployment re-pointings and the gate's decisions."""
    from llmos.store.schema import AdaptDecision, DeploymentEvent

    DeploymentEvent.__table__.create(conn)  # type: ignore[attr-defined]
    AdaptDecision.__table__.create(conn)  # type: ignore[attr-defined]


# MIGRATIONS[i] brings a database from version i + 1 to version i + 2.
MIGRATIONS: list[Callable[[Connection], None]] = [
    add_deployments,
    _add_jobs_and_prediction_sets,
    _add_data_keys,
    _add_users_tokens_audit,
    add_served_requests_and_feedback,
    add_deployment_events_and_adapt_decisions,
]
LATEST = 1 + len(MIGRATIONS)


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(SchemaVersion.__tablename__):
        return None
    return conn.execute(select(SchemaVersion.version)).scalar_one_or_none()


def upgrade(conn: Connection) -> int:
    """Bring the database to `LATEST`; return the version it had before (0 if new)."""
    version = current_version(conn)
    if version is None:
        Base.metadata.create_all(conn)
        conn.execute(insert(SchemaVersion).values(id=1, version=LATEST))
        return 0
    if version > LATEST:
        raise StoreError(
            f"the workspace database is at schema version {version}, newer than this llmos "
            f"understands ({LATEST}): upgrade llmos"
        )
    for step in MIGRATIONS[version - 1 :]:
        step(conn)
    if version < LATEST:
        conn.execute(update(SchemaVersion).values(version=LATEST))
    return version
