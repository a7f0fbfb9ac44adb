"""Schema 13 (F9): run_metrics, every training run's per-step metrics (loss, learning rate,
samples/s at each optimizer step; validation metrics at each epoch's last step).

Revision ID: 0013
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(64), nullable=False, server_default="default"),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_run_metrics_model_id", "run_metrics", ["model_id"])


def downgrade() -> None:
    op.drop_index("ix_run_metrics_model_id", "run_metrics")
    op.drop_table("run_metrics")
