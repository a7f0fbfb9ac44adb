"""Schema 9 (F13): schedules, the periodic jobs the kernel submits (every N seconds or on
a cron expression), claimed by a conditional UPDATE of `next_run_at`.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("every_s", sa.Integer, nullable=True),
        sa.Column("cron", sa.String(128), nullable=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("next_run_at", sa.DateTime, nullable=False),
        sa.Column("last_run_at", sa.DateTime, nullable=True),
        sa.Column("last_job_id", sa.Integer, nullable=True),
        sa.Column("last_outcome", sa.Text, nullable=True),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_schedules_next_run_at", "schedules", ["next_run_at"])
