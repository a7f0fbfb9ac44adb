"""Schema 17 (F17): a project's GPU-hours per day quota (`projects.gpu_hours_per_day`,
None: no limit), beside its CPU-minutes.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("gpu_hours_per_day", sa.Double, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("gpu_hours_per_day")
