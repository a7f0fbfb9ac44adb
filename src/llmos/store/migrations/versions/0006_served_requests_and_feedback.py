"""Schema 6 (F6 feedback and monitoring): the log of served requests, the feedback on them
and the alerts of `llmos monitor`.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("model", sa.String(1024), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("label", sa.String(1024), nullable=True),
        sa.Column("confidence", sa.Double, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("request_id", "idx"),
    )
    op.create_index("ix_served_requests_request_id", "served_requests", ["request_id"])
    op.create_index("ix_served_requests_deployment", "served_requests", ["deployment"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("served_id", sa.Integer, sa.ForeignKey("served_requests.id"), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("idx", sa.Integer, nullable=True),
        sa.Column("model", sa.String(1024), nullable=True),
        sa.Column("inputs", sa.Text, nullable=True),
        sa.Column("label", sa.String(1024), nullable=True),
        sa.Column("rating", sa.Integer, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("predicted", sa.String(1024), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_feedback_deployment", "feedback", ["deployment"])
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("model", sa.String(1024), nullable=False),
        sa.Column("check", sa.String(32), nullable=False),
        sa.Column("window_end", sa.Integer, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("threshold", sa.Double, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("deployment", "check", "window_end"),
    )
    op.create_index("ix_monitor_alerts_deployment", "monitor_alerts", ["deployment"])
