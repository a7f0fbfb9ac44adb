"""Schema 11 (F11): opinion watches, their ingested texts, the series buckets counted
from them, how far each source file was read, and the alerts their detectors raised.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _project() -> sa.Column:
    return sa.Column("project", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("classifier", sa.String(128), nullable=False),
        sa.Column("entities", sa.String(128), nullable=True),
        sa.Column("negative", sa.String(128), nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("topic_column", sa.String(128), nullable=True),
        sa.Column("bucket", sa.String(8), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "name"),
    )
    op.create_table(
        "watch_texts",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("watch_id", sa.Integer, nullable=False),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("bucket_start", sa.DateTime, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("negative", sa.Boolean, nullable=False),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("entities", sa.JSON, nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("watch_id", "client_id"),
    )
    op.create_index("ix_watch_texts_watch_id", "watch_texts", ["watch_id"])
    op.create_index("ix_watch_texts_bucket_start", "watch_texts", ["bucket_start"])
    op.create_table(
        "watch_buckets",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("watch_id", sa.Integer, nullable=False),
        sa.Column("series", sa.String(256), nullable=False),
        sa.Column("bucket_start", sa.DateTime, nullable=False),
        sa.Column("volume", sa.Integer, nullable=False),
        sa.Column("negative", sa.Integer, nullable=False),
        sa.Column("score_sum", sa.Double, nullable=False),
        sa.UniqueConstraint("watch_id", "series", "bucket_start"),
    )
    op.create_index("ix_watch_buckets_watch_id", "watch_buckets", ["watch_id"])
    op.create_table(
        "watch_sources",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("watch_id", sa.Integer, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("watch_id", "path"),
    )
    op.create_index("ix_watch_sources_watch_id", "watch_sources", ["watch_id"])
    op.create_table(
        "watch_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        _project(),
        sa.Column("watch_id", sa.Integer, nullable=False),
        sa.Column("series", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("episode_start", sa.DateTime, nullable=False),
        sa.Column("bucket_start", sa.DateTime, nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("baseline", sa.Double, nullable=False),
        sa.Column("z", sa.Double, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("examples", sa.JSON, nullable=False),
        sa.Column("acked_by", sa.String(128), nullable=True),
        sa.Column("acked_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("watch_id", "series", "metric", "episode_start"),
    )
    op.create_index("ix_watch_alerts_watch_id", "watch_alerts", ["watch_id"])
