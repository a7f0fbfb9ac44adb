"""Schema 3 (F2 kernel): the job queue, batch-prediction artifacts, and the job that made
each model version.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("handler", sa.String(256), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("cpus", sa.Integer, nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("threads", sa.Integer, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("log_path", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("heartbeat_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "prediction_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), nullable=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=True),
        sa.Column("num_rows", sa.Integer, nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("artifact", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("name", "version"),
    )
    op.create_index("ix_prediction_sets_name", "prediction_sets", ["name"])
    op.create_index("ix_prediction_sets_job_id", "prediction_sets", ["job_id"])
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a column with its reference in place
        op.execute("ALTER TABLE model_versions ADD COLUMN job_id INTEGER REFERENCES jobs (id)")
    else:
        op.add_column("model_versions", sa.Column("job_id", sa.Integer, nullable=True))
        op.create_foreign_key(None, "model_versions", "jobs", ["job_id"], ["id"])
    op.create_index("ix_model_versions_job_id", "model_versions", ["job_id"])
