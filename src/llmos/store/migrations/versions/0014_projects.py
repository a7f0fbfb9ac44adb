"""Schema 14 (F17): projects. Every resource table gains `project` (existing rows go to
`default`), names become unique per (project, name); projects, their members (a role per
user per project) and the usage counters that quotas and rate limits share across
server replicas (F13) are new tables. Audit events gain `project` too; the hash of an
event covers it only when it is not `default`, so every existing chain still verifies.

On SQLite a UNIQUE constraint can only change by copying the table (alembic's batch
mode), which the migration runner does with foreign keys off (`migrations._locked`).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCOPED = (
    "dataset_versions", "model_versions", "jobs", "prediction_sets", "deployments", "served_requests",
    "feedback", "monitor_alerts", "deployment_events", "adapt_decisions", "schedules", "audit_events",
)  # fmt: skip
# table: its UNIQUE constraints before; each gains `project` in front
UNIQUES: dict[str, list[tuple[str, ...]]] = {
    "dataset_versions": [("name", "version"), ("name", "content_hash")],
    "model_versions": [("name", "version")],
    "prediction_sets": [("name", "version")],
    "deployments": [("name",)],
    "schedules": [("name",)],
    "monitor_alerts": [("deployment", "check", "window_end")],
}
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _unique_name(bind: sa.engine.Connection, table: str, columns: tuple[str, ...]) -> str:
    """The name `create_all` gives this constraint, so a migrated database has the declared
    shape: PostgreSQL's own `<table>_<columns>_key`; SQLite keeps the convention's name."""
    if bind.dialect.name == "postgresql":
        name = f"{table}_{'_'.join(columns)}_key"
        assert len(name) <= 63, name  # PostgreSQL would shorten a longer one its own way
        return name
    return f"uq_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    bind = op.get_bind()
    for table in SCOPED:
        op.add_column(table, sa.Column("project", sa.String(64), nullable=False, server_default="default"))
    op.add_column("model_versions", sa.Column("shared_from", sa.String(1024), nullable=True))
    for table in ("users", "api_tokens"):  # an admin can suspend either (and resume it)
        op.add_column(table, sa.Column("suspended_at", sa.DateTime, nullable=True))
    for table, changes in UNIQUES.items():
        found = {tuple(u["column_names"]): u["name"] for u in sa.inspect(bind).get_unique_constraints(table)}
        with op.batch_alter_table(table, naming_convention=CONVENTION, recreate="auto") as batch:
            for old in changes:
                # PostgreSQL names its constraints; SQLite's unnamed ones get the convention's
                name = found.get(old) or f"uq_{table}_{'_'.join(old)}"
                batch.drop_constraint(name, type_="unique")
                scoped = ("project", *old)
                batch.create_unique_constraint(_unique_name(bind, table, scoped), list(scoped))
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("max_concurrent_jobs", sa.Integer, nullable=True),
        sa.Column("cpu_minutes_per_day", sa.Double, nullable=True),
        sa.Column("requests_per_day", sa.Integer, nullable=True),
        sa.Column("max_stored_bytes", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "project_members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("project", "user_id"),
    )
    op.create_index("ix_project_members_project", "project_members", ["project"])
    op.create_index("ix_project_members_user_id", "project_members", ["user_id"])
    op.create_table(
        "usage_counters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("value", sa.Double, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("key", "window"),
    )
    now = sa.func.current_timestamp()
    projects = sa.table(
        "projects",
        sa.column("name"),
        sa.column("description"),
        sa.column("created_by"),
        sa.column("created_at"),
    )
    op.execute(
        projects.insert().values(
            name="default", description="everything made before projects", created_by="", created_at=now
        )
    )
