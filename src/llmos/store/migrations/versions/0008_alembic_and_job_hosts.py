"""Schema 8 (F13): alembic owns the schema from here on, and a running job names the host
whose scheduler claimed it, so schedulers on many hosts watch only their own workers.

The legacy `llmos_schema` row moves to 8, so a release with the hand-written runner
(which knows 7) refuses this database instead of writing to a schema it does not know.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("host", sa.String(256), nullable=True))
    op.execute("UPDATE llmos_schema SET version = 8")
