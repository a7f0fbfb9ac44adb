"""Schema 7 (F6 adapt): the history of deployment re-pointings and the gate's decisions.
The last schema of the hand-written runner: workspaces of that release are stamped here.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_model", sa.String(1024), nullable=True),
        sa.Column("to_model", sa.String(1024), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_deployment_events_deployment", "deployment_events", ["deployment"])
    op.create_table(
        "adapt_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("candidate", sa.String(1024), nullable=False),
        sa.Column("parent", sa.String(1024), nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("last_feedback_id", sa.Integer, nullable=True),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_adapt_decisions_deployment", "adapt_decisions", ["deployment"])
