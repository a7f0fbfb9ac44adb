"""Schema 4 (F5 encryption at rest): the wrapped data keys of encrypted objects.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("object", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_data_keys_key_id", "data_keys", ["key_id"])
