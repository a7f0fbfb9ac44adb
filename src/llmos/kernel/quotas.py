"""Project quotas at job admission (F17): concurrent jobs, CPU-minutes and GPU-hours a day.

All are read from the database each scheduling pass (running jobs of the project on
every host; CPU-minutes and GPU-hours from the jobs table: cpus or gpus x wall time
since 00:00 UTC), so
schedulers on many hosts and a quota changed a moment ago agree: a new limit takes
effect at the next admission, never by stopping a running job. A job over the
concurrent-jobs quota waits in the queue (other projects' jobs go past it); a job of a
project whose CPU-minutes are used up is refused, naming the quota and when it resets;
so is a job that asks for GPUs when the project's GPU-hours are used up (its CPU-only
jobs still run). `check_submit` refuses the submission itself in those cases (HTTP 429).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmos.core.errors import QuotaExceeded
from llmos.store.db import Store
from llmos.store.projects import (
    cpu_minutes_today,
    day_window,
    gpu_hours_today,
    list_projects,
    running_jobs_of,
)
from llmos.store.schema import Job, Project


def _resets() -> tuple[str, float]:
    _, seconds = day_window()
    hours, minutes = int(seconds // 3600), int(seconds % 3600 // 60)
    return f"it resets at 00:00 UTC (in {hours}h {minutes:02d}m)", seconds


@dataclass(frozen=True)
class DailyQuota:
    """A per-day quota read from the jobs table: the project's budget field, what it used
    today and how the refusal names it."""

    field: str  # the Project column, also the quota's name in the refusal
    unit: str
    used_today: Callable[[Store, str], float]
    digits: int
    note: str = ""

    def refusal(self, store: Store, project: Project) -> tuple[str, float] | None:
        budget = getattr(project, self.field)
        if budget is None:
            return None
        used = self.used_today(store, project.name)
        if used < budget:
            return None
        when, seconds = _resets()
        return (
            f"project {project.name!r} has used its quota of {budget:g} {self.unit} per day "
            f"({self.field}; {used:.{self.digits}f} used): {when}{self.note}",
            seconds,
        )


CPU = DailyQuota("cpu_minutes_per_day", "CPU-minutes", cpu_minutes_today, 1)
GPU = DailyQuota("gpu_hours_per_day", "GPU-hours", gpu_hours_today, 2, "; jobs without GPUs still run")


def check_submit(store: Store, project_name: str, gpus: int = 0) -> None:
    """Raise QuotaExceeded (429) when the project cannot run this job today."""
    project = next((p for p in list_projects(store) if p.name == project_name), None)
    if project is None:
        return
    refusal = CPU.refusal(store, project) or (GPU.refusal(store, project) if gpus > 0 else None)
    if refusal is not None:
        raise QuotaExceeded(*refusal)


class ProjectQuotas:
    """The quotas of every project for one scheduling pass."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.projects = {p.name: p for p in list_projects(store)}
        self.running: dict[str, int] = {}
        self._checked: dict[tuple[str, str], str | None] = {}  # (project, quota): refusal

    def _refused(self, quota: DailyQuota, project: Project) -> str | None:
        key = (project.name, quota.field)
        if key not in self._checked:
            found = quota.refusal(self.store, project)
            self._checked[key] = found[0] if found else None
        return self._checked[key]

    def refusal(self, job: Job) -> str | None:
        project = self.projects.get(job.project)
        if project is None:
            return None
        if project.cpu_minutes_per_day is not None and (refused := self._refused(CPU, project)):
            return refused
        if project.gpu_hours_per_day is not None and (job.gpus or 0) > 0:
            return self._refused(GPU, project)
        return None

    def admits(self, job: Job) -> bool:
        project = self.projects.get(job.project)
        if project is None or project.max_concurrent_jobs is None:
            return True
        if job.project not in self.running:
            self.running[job.project] = running_jobs_of(self.store, job.project)
        return self.running[job.project] < project.max_concurrent_jobs

    def started(self, job: Job) -> None:
        if job.project in self.running:
            self.running[job.project] += 1
