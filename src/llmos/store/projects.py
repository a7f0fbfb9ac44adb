"""Projects (F17): namespaces of a workspace, their members and quotas, and the usage
counters every server replica and scheduler shares through the database.

A project's rows live in the same tables as every other project's, told apart by their
`project` column (`store.scope`). Quotas are columns of `projects` (None: no limit);
usage is read where it is kept: CPU-minutes and GPU-hours from the jobs table, stored bytes from the
dataset and model rows, requests from `usage_counters`, which one atomic upsert
(`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, on SQLite and PostgreSQL alike) adds
to, so N replicas count together.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select

from llmos.core.errors import Conflict, NotFoundError, QuotaExceeded, UsageError
from llmos.core.util import utcnow
from llmos.store.audit import record
from llmos.store.db import Store
from llmos.store.schema import (
    DatasetVersion,
    Deployment,
    Job,
    ModelVersion,
    PredictionSet,
    Project,
    ProjectMember,
    UsageCounter,
    User,
)
from llmos.store.scope import DEFAULT_PROJECT, all_projects

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MEMBER_ROLES = ("developer", "viewer")
QUOTAS = {
    "max_concurrent_jobs": "concurrent jobs",
    "cpu_minutes_per_day": "CPU-minutes per day",
    "gpu_hours_per_day": "GPU-hours per day",
    "requests_per_day": "requests per day",
    "max_stored_bytes": "stored bytes",
}


def check_project_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UsageError(
            f"invalid project name {name!r}: use lower-case letters, digits, '_' or '-' "
            "(starting with a letter or digit, at most 64 characters)"
        )
    return name


def _names(session: Any) -> str:
    return ", ".join(session.scalars(select(Project.name).order_by(Project.name)))


def get_project(store: Store, name: str) -> Project:
    """The project `name`, or NotFoundError (404) naming it and the known ones."""
    with store.read() as session:
        row = session.scalars(select(Project).where(Project.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"project {name!r} not found (projects: {_names(session)}); "
                f"create it with `llmos project create {name}`"
            )
        return row


def list_projects(store: Store) -> list[Project]:
    with store.read() as session:
        return list(session.scalars(select(Project).order_by(Project.name)))


def create_project(store: Store, name: str, description: str = "", created_by: str = "") -> Project:
    check_project_name(name)
    with store.transaction() as session:
        if session.scalars(select(Project).where(Project.name == name)).first() is not None:
            raise UsageError(f"project {name!r} already exists")
        row = Project(name=name, description=description, created_by=created_by)
        session.add(row)
        session.flush()
    record(store, "project.create", name)
    return row


def delete_project(store: Store, name: str) -> Project:
    """Remove an empty-of-deployments project (409 listing its deployments otherwise); its
    other rows stay, unreachable, so the audit log and lineage keep what they name."""
    if name == DEFAULT_PROJECT:
        raise UsageError("project 'default' cannot be deleted")
    row = get_project(store, name)
    with all_projects(), store.transaction() as session:
        deployed = list(
            session.scalars(
                select(Deployment.name).where(Deployment.project == name).order_by(Deployment.name)
            )
        )
        if deployed:
            raise Conflict(
                f"project {name!r} still has deployments {', '.join(deployed)}: "
                "undeploy them first (`llmos undeploy NAME --project " + name + "`)"
            )
        session.delete(session.get(Project, row.id))
        for member in session.scalars(select(ProjectMember).where(ProjectMember.project == name)):
            session.delete(member)
    record(store, "project.delete", name)
    return row


def set_quotas(store: Store, name: str, **quotas: Any) -> Project:
    """Set (a number) or clear (0 or below: no limit) quotas; None leaves one as it is."""
    get_project(store, name)
    changed: dict[str, Any] = {}
    with store.transaction() as session:
        row = session.scalars(select(Project).where(Project.name == name)).one()
        for key, value in quotas.items():
            if key not in QUOTAS:
                raise UsageError(f"unknown quota {key!r}: use one of {', '.join(QUOTAS)}")
            if value is None:
                continue
            value = None if value <= 0 else value
            setattr(row, key, value)
            changed[key] = value
    if changed:
        record(store, "project.quota", name, detail=changed)
    return get_project(store, name)


# --- members ------------------------------------------------------------------------------


def _user(session: Any, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name, User.removed_at.is_(None))).first()
    if user is None:
        raise NotFoundError(f"user {name!r} not found; add it with `llmos auth user add {name} --role ...`")
    return user


def add_member(store: Store, project: str, user: str, role: str) -> ProjectMember:
    if role not in MEMBER_ROLES:
        raise UsageError(f"unknown project role {role!r}: use one of {', '.join(MEMBER_ROLES)}")
    get_project(store, project)
    with store.transaction() as session:
        found = _user(session, user)
        row = session.scalars(
            select(ProjectMember).where(ProjectMember.project == project, ProjectMember.user_id == found.id)
        ).first()
        if row is None:
            row = ProjectMember(project=project, user_id=found.id, role=role)
            session.add(row)
        else:
            row.role = role
        session.flush()
    record(store, "project.member.add", f"{project}/{user}", detail={"role": role})
    return row


def remove_member(store: Store, project: str, user: str) -> None:
    get_project(store, project)
    with store.transaction() as session:
        found = _user(session, user)
        row = session.scalars(
            select(ProjectMember).where(ProjectMember.project == project, ProjectMember.user_id == found.id)
        ).first()
        if row is None:
            raise NotFoundError(f"user {user!r} has no role in project {project!r}")
        session.delete(row)
    record(store, "project.member.remove", f"{project}/{user}")


def members(store: Store, project: str) -> list[tuple[str, str]]:
    with store.read() as session:
        rows = session.execute(
            select(User.name, ProjectMember.role)
            .join(User, User.id == ProjectMember.user_id)
            .where(ProjectMember.project == project, User.removed_at.is_(None))
            .order_by(User.name)
        ).all()
        return [(r[0], r[1]) for r in rows]


def role_in(store: Store, user: str, project: str) -> str | None:
    """The role `user` has in `project`: its member row's; in `default`, without a row, its
    own (global) role, as before projects; elsewhere None (no access)."""
    with store.read() as session:
        row = session.execute(
            select(ProjectMember.role, User.role)
            .join(User, User.id == ProjectMember.user_id)
            .where(ProjectMember.project == project, User.name == user, User.removed_at.is_(None))
        ).first()
        if row is not None:
            return str(row[0])
        if project != DEFAULT_PROJECT:
            return None
        own = session.scalar(select(User.role).where(User.name == user, User.removed_at.is_(None)))
        return None if own is None else str(own)


# --- usage --------------------------------------------------------------------------------


def day_window(now: datetime | None = None) -> tuple[str, float]:
    """Today's UTC date and the seconds until it ends (when a daily quota resets)."""
    now = now or datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
    return now.date().isoformat(), (midnight - now).total_seconds()


def add_usage(
    store: Store, key: str, window: str, amount: float = 1.0, project: str = DEFAULT_PROJECT
) -> float:
    """Add `amount` to counter (`key`, `window`) in one atomic statement; the new value."""
    values = {"key": key, "window": window, "value": amount, "project": project, "updated_at": utcnow()}
    dialect = store.engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
    adding: Any = upsert(UsageCounter).values(**values)
    statement = adding.on_conflict_do_update(
        index_elements=["key", "window"],
        set_={"value": UsageCounter.value + adding.excluded.value, "updated_at": values["updated_at"]},
    ).returning(UsageCounter.value)
    with store.engine.begin() as conn:
        return float(conn.execute(statement).scalar_one())


def usage_of(store: Store, key: str, window: str) -> float:
    with store.engine.connect() as conn:
        found = conn.execute(
            select(UsageCounter.value).where(UsageCounter.key == key, UsageCounter.window == window)
        ).scalar()
    return float(found or 0.0)


def running_jobs_of(store: Store, project: str) -> int:
    with all_projects(), store.read() as session:
        query = select(func.count()).select_from(Job).where(Job.project == project, Job.state == "running")
        return int(session.scalar(query) or 0)


def _device_seconds_today(store: Store, project: str, gpus: bool, now: datetime | None) -> float:
    """Seconds x devices the project's jobs used since 00:00 UTC (a running job counts up
    to now): CPUs (each job at least one), or GPUs (jobs that asked for some)."""
    now_naive = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    midnight = datetime.combine(now_naive.date(), datetime.min.time())
    column = Job.gpus if gpus else Job.cpus
    with all_projects(), store.read() as session:
        query = select(column, Job.started_at, Job.finished_at).where(
            Job.project == project,
            Job.started_at.is_not(None),
            (Job.finished_at.is_(None) & (Job.state == "running")) | (Job.finished_at >= midnight),
        )
        if gpus:
            query = query.where(Job.gpus > 0)
        rows = session.execute(query).all()
    total = 0.0
    for devices, started, finished in rows:
        assert started is not None  # selected so
        start = max(started, midnight)
        end = finished or now_naive
        total += (devices if gpus else max(1, devices or 1)) * max(0.0, (end - start).total_seconds())
    return total


def cpu_minutes_today(store: Store, project: str, now: datetime | None = None) -> float:
    """CPU-minutes the project's jobs used since 00:00 UTC (cpus x wall time), read from
    the jobs table itself."""
    return _device_seconds_today(store, project, False, now) / 60.0


def gpu_hours_today(store: Store, project: str, now: datetime | None = None) -> float:
    """GPU-hours the project's jobs used since 00:00 UTC (gpus x wall time)."""
    return _device_seconds_today(store, project, True, now) / 3600.0


def stored_bytes(store: Store, project: str) -> int:
    """Bytes of the project's dataset and prediction-set versions. Model files are not
    charged: their blobs are content-addressed and shared by every model that has them."""
    with all_projects(), store.read() as session:
        data = session.scalar(
            select(func.sum(DatasetVersion.size_bytes)).where(DatasetVersion.project == project)
        )
        sets = session.scalar(
            select(func.sum(PredictionSet.size_bytes)).where(PredictionSet.project == project)
        )
    return int(data or 0) + int(sets or 0)


def check_stored_bytes(store: Store, project: str, adding: int) -> None:
    """QuotaExceeded when `adding` more bytes would take the project over `max_stored_bytes`."""
    with store.read() as session:
        limit = session.scalar(select(Project.max_stored_bytes).where(Project.name == project))
    if limit is None:
        return
    used = stored_bytes(store, project)
    if used + adding > limit:
        raise QuotaExceeded(
            f"project {project!r} would go over its quota of {limit} stored bytes (max_stored_bytes): "
            f"{used} used + {adding} new; raise it with `llmos project quota {project} --stored-bytes N`",
            3600.0,
        )


def usage(store: Store, project: str) -> dict[str, float]:
    today, _ = day_window()
    return {
        "max_concurrent_jobs": running_jobs_of(store, project),
        "cpu_minutes_per_day": round(cpu_minutes_today(store, project), 3),
        "gpu_hours_per_day": round(gpu_hours_today(store, project), 4),
        "requests_per_day": usage_of(store, f"project:{project}:requests", today),
        "max_stored_bytes": stored_bytes(store, project),
    }


def count_rows(store: Store, project: str) -> dict[str, int]:
    """How many datasets, models, deployments and jobs the project holds."""
    with all_projects(), store.read() as session:
        counts = {}
        for label, table, column in (
            ("datasets", DatasetVersion, DatasetVersion.name),
            ("models", ModelVersion, ModelVersion.name),
            ("deployments", Deployment, Deployment.name),
        ):
            counts[label] = int(
                session.scalar(select(func.count(func.distinct(column))).where(table.project == project)) or 0
            )
        counts["jobs"] = int(
            session.scalar(select(func.count()).select_from(Job).where(Job.project == project)) or 0
        )
        return counts
