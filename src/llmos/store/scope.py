"""The project a store call acts in: every project-scoped table (`schema.Scoped`) is
read and written through it.

One context variable holds the current project (`in_project`; `ops.Context.acting` sets
it for every system call, the kernel's worker for every job). Two SQLAlchemy hooks do
the rest, so no query of the store has to remember it:

- every ORM SELECT, UPDATE and DELETE of a scoped table gets `project = <current>` added
  (`with_loader_criteria` from a `do_orm_execute` listener: SQLAlchemy's documented
  recipe for global filters), so a name or an id of another project is simply not found
  and a listing never shows another project's names;
- every INSERT fills `project` from the same variable (the column's default).

`all_projects()` lifts the filter for the few readers that look at every project: the
kernel's scheduler (it admits queued jobs of every project) and audit verification.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import String, event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

DEFAULT_PROJECT = "default"
ALL = "*"
_project: ContextVar[str] = ContextVar("llmos_project", default=DEFAULT_PROJECT)


def current_project() -> str:
    """The project new rows go to (`default` unless a caller chose one)."""
    project = _project.get()
    return DEFAULT_PROJECT if project == ALL else project


@contextmanager
def in_project(project: str) -> Iterator[None]:
    token = _project.set(project)
    try:
        yield
    finally:
        _project.reset(token)


@contextmanager
def all_projects() -> Iterator[None]:
    """Reads see every project's rows (the scheduler, audit verification)."""
    with in_project(ALL):
        yield


def set_project(project: str) -> None:
    _project.set(project)


class Scoped:
    """Mixin of the tables whose rows belong to one project: their `project` column,
    filled from the current project."""

    project: Mapped[str] = mapped_column(String(64), default=current_project, server_default=DEFAULT_PROJECT)


@event.listens_for(Session, "do_orm_execute")
def _scope(state: ORMExecuteState) -> None:
    project = _project.get()
    if project == ALL or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return
    state.statement = state.statement.options(
        with_loader_criteria(Scoped, lambda cls: cls.project == project, include_aliases=True)
    )


def project_folder(project: str, kind: str = "models") -> str:
    """Where a project's files of one kind go under the cache: `models/` for `default` (as
    before projects), `projects/P/models/` for the others, so equal names never share a folder."""
    return kind if project == DEFAULT_PROJECT else f"projects/{project}/{kind}"
