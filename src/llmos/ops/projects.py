"""Projects (F17): namespaces of one workspace, with a role per user per project and
quotas per project (`llmos project ...`, `/v1/projects`).

Every other operation runs in its context's project (`Context.project`: `--project`,
`Workspace(project=...)`, the `LLMOS-Project` header); these manage the projects
themselves. Creating, deleting, membership and quotas are the admin's
(`projects:admin`); any user lists and shows the projects it has a role in.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp

ADMIN = "projects:admin"
READ = "projects:read"


class ProjectMemberInfo(Result):
    user: str
    role: str = Field(description="developer or viewer in this project")


class ProjectInfo(Result):
    name: str
    description: str = ""
    created_by: str = ""
    created_at: Timestamp
    quotas: dict[str, float | None] = Field(
        default_factory=dict,
        description="max_concurrent_jobs, cpu_minutes_per_day, gpu_hours_per_day, requests_per_day, "
        "max_stored_bytes (None: no limit)",
    )
    usage: dict[str, float] = Field(
        default_factory=dict, description="The same keys: what is used now / today"
    )
    members: list[ProjectMemberInfo] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict, description="datasets, models, deployments, jobs")
    note: str | None = Field(None, description="What a change means (a quota below current usage)")


def _info(ctx: Context, name: str, full: bool = True, note: str | None = None) -> ProjectInfo:
    from llmos.store import projects as store

    row = store.get_project(ctx.store, name)
    info: dict[str, Any] = {
        "name": row.name,
        "description": row.description,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "quotas": {key: getattr(row, key) for key in store.QUOTAS},
        "note": note,
    }
    if full:
        info["usage"] = store.usage(ctx.store, name)
        info["members"] = [ProjectMemberInfo(user=u, role=r) for u, r in store.members(ctx.store, name)]
        info["counts"] = store.count_rows(ctx.store, name)
    return ProjectInfo(**info)


def _visible(ctx: Context, name: str) -> bool:
    from llmos.store.projects import role_in

    return ctx.actor.role == "admin" or role_in(ctx.store, ctx.actor.name, name) is not None


@operation(READ)
def projects(ctx: Context) -> list[ProjectInfo]:
    """The projects the caller has a role in (an admin: every project)."""
    from llmos.store.projects import list_projects

    return [_info(ctx, p.name, full=False) for p in list_projects(ctx.store) if _visible(ctx, p.name)]


@operation(READ)
def project_show(ctx: Context, name: str) -> ProjectInfo:
    """A project with its quotas, today's usage, members and how many resources it holds."""
    from llmos.core.errors import NotFoundError
    from llmos.store.projects import get_project

    get_project(ctx.store, name)  # unknown: 404 naming it
    if not _visible(ctx, name):
        raise NotFoundError(f"project {name!r} not found among the projects you have a role in")
    return _info(ctx, name)


@operation(ADMIN)
def project_create(ctx: Context, name: str, description: str = "") -> ProjectInfo:
    """Create a project (names: lower-case letters, digits, '_' and '-')."""
    from llmos.store.projects import create_project

    create_project(ctx.store, name, description, ctx.actor.name)
    return _info(ctx, name)


@operation(ADMIN)
def project_delete(ctx: Context, name: str) -> ProjectInfo:
    """Delete a project that has no deployments (409 listing them otherwise)."""
    from llmos.store.projects import delete_project

    info = _info(ctx, name, full=False)
    delete_project(ctx.store, name)
    return info


@operation(ADMIN)
def project_member_add(ctx: Context, name: str, user: str, role: str = "developer") -> ProjectInfo:
    """Give `user` a role (developer or viewer) in project `name` (replacing the one it had)."""
    from llmos.store.projects import add_member

    add_member(ctx.store, name, user, role)
    return _info(ctx, name)


@operation(ADMIN)
def project_member_remove(ctx: Context, name: str, user: str) -> ProjectInfo:
    """Take `user`'s role in project `name` away."""
    from llmos.store.projects import remove_member

    remove_member(ctx.store, name, user)
    return _info(ctx, name)


@operation(ADMIN)
def project_quota(
    ctx: Context,
    name: str,
    max_concurrent_jobs: int | None = None,
    cpu_minutes_per_day: float | None = None,
    requests_per_day: int | None = None,
    max_stored_bytes: int | None = None,
    gpu_hours_per_day: float | None = None,
) -> ProjectInfo:
    """Set a project's quotas (0: no limit; omitted: unchanged). A quota below what is used
    now is accepted and takes effect at the next admission; the answer says so."""
    from llmos.store import projects as store

    asked = {
        "max_concurrent_jobs": max_concurrent_jobs,
        "cpu_minutes_per_day": cpu_minutes_per_day,
        "requests_per_day": requests_per_day,
        "max_stored_bytes": max_stored_bytes,
        "gpu_hours_per_day": gpu_hours_per_day,
    }
    for key, value in asked.items():
        if value is not None and value < 0:
            raise_usage(f"quota {key} must be 0 (no limit) or more, not {value:g}")
    store.set_quotas(ctx.store, name, **asked)
    used = store.usage(ctx.store, name)
    below = [
        f"{store.QUOTAS[k]} {v:g} < {used[k]:g} in use"
        for k, v in asked.items()
        if v is not None and v > 0 and used[k] > v
    ]
    note = None
    if below:
        note = f"below current usage ({'; '.join(below)}): accepted, takes effect at the next admission"
    return _info(ctx, name, note=note)


def raise_usage(message: str) -> None:
    from llmos.core.errors import UsageError

    raise UsageError(message)


PROJECT_HEADER = "LLMOS-Project"
_CACHE_S = 2.0
_quota_cache: dict[tuple[int, str], tuple[float, int | None]] = {}


def project_named(value: str | None) -> str:
    """The project an `LLMOS-Project` header (or `--project`) names: `default` when absent;
    a UsageError (422) naming the header for a malformed name."""
    from llmos.core.errors import UsageError
    from llmos.store.projects import check_project_name

    if value is None or value == "":
        return "default"
    try:
        return check_project_name(value)
    except UsageError as exc:
        raise UsageError(f"{PROJECT_HEADER} header: {exc.message}") from None


def admit_request(ctx: Context) -> None:
    """Count one served request against its project's `requests_per_day` quota, in the
    database (so every replica counts together); QuotaExceeded (429, Retry-After: until
    00:00 UTC) once it is used up. Projects without the quota cost no write."""
    import time

    from llmos.core.errors import QuotaExceeded
    from llmos.store.projects import add_usage, day_window, get_project

    key = (id(ctx.store), ctx.project)
    now = time.monotonic()
    cached = _quota_cache.get(key)
    if cached is None or now - cached[0] > _CACHE_S:
        cached = (now, get_project(ctx.store, ctx.project).requests_per_day)
        _quota_cache[key] = cached
    limit = cached[1]
    if limit is None:
        return
    today, left = day_window()
    used = add_usage(ctx.store, f"project:{ctx.project}:requests", today, 1.0, ctx.project)
    if used > limit:
        raise QuotaExceeded(
            f"project {ctx.project!r} has used its quota of {limit} requests per day "
            f"(requests_per_day): it resets at 00:00 UTC, in {int(left // 60)} minutes",
            left,
        )


def enter_project(project: str) -> None:
    """Make `project` the current one for the rest of this context (one HTTP request)."""
    from llmos.store.scope import set_project

    set_project(project)
