"""Jobs from Python: queue training, evaluation and batch prediction, follow, cancel and
retry them, and run the kernel. `Workspace` carries these methods, each one call into
`llmos.ops.jobs`; `llmos.Client` offers the same over HTTP.

ws = llmos.Workspace()
job = ws.submit_train("spec.yaml", priority=5)   # starts a background kernel if none runs
for event in ws.job_events(job.id):              # state, progress, log lines, then the end
    print(event)
ws.wait_job(job.id).result                         # {"model": "intents@3", ...}
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from llmos.ops import jobs as ops_jobs
from llmos.ops import predict as ops_predict
from llmos.ops import workspace as ops_workspace
from llmos.ops.jobs import JobInfo, JobLog, KernelStatus, to_spec
from llmos.ops.predict import PredictionSetInfo
from llmos.spec.schema import TaskSpec

if TYPE_CHECKING:
    from llmos.core.settings import Settings
    from llmos.ops.context import Context
    from llmos.store.db import Store

SpecLike = str | os.PathLike[str] | dict[str, Any] | TaskSpec

__all__ = ["JobsMixin", "SpecLike", "to_spec"]


def local_spec(spec: SpecLike, backend: str | None = None) -> Any:
    """A file on this machine is read here (its problems name the file); a mapping, YAML
    text or a `TaskSpec` goes to ops as it is."""
    if isinstance(spec, os.PathLike) or (isinstance(spec, str) and "\n" not in spec):
        return to_spec(spec, backend)
    return spec


class JobsMixin:
    """The job methods of `Workspace`, which provides `settings`, `store` and `context`."""

    settings: Settings

    if TYPE_CHECKING:  # provided by Workspace; declared here for type checking only

        @property
        def store(self) -> Store: ...

        @property
        def context(self) -> Context: ...

    # --- submitting ---------------------------------------------------------------------

    def submit_train(
        self,
        spec: SpecLike,
        *,
        priority: int = 0,
        cpus: int | None = None,
        gpus: int = 0,
        memory_mb: int = 0,
        max_attempts: int = 2,
        backend: str | None = None,
        start_kernel: bool = True,
    ) -> JobInfo:
        """Queue a training run (spec: a file, a mapping, YAML text or a `TaskSpec`); its
        inputs are checked now, so a bad spec fails here and nothing is queued."""
        return ops_jobs.submit_train(
            self.context,
            local_spec(spec, backend),
            priority=priority,
            cpus=cpus,
            gpus=gpus,
            memory_mb=memory_mb,
            max_attempts=max_attempts,
            backend=backend,
            start_kernel=start_kernel,
        )

    def submit_eval(
        self,
        model: str,
        data: str,
        *,
        optimize: str | None = None,
        priority: int = 0,
        cpus: int = 1,
        max_attempts: int = 2,
        start_kernel: bool = True,
    ) -> JobInfo:
        return ops_jobs.submit_eval(
            self.context,
            model,
            data,
            optimize=optimize,
            priority=priority,
            cpus=cpus,
            max_attempts=max_attempts,
            start_kernel=start_kernel,
        )

    def submit_predict(
        self,
        model: str,
        data: str,
        *,
        name: str | None = None,
        column: str | None = None,
        backend: dict[str, Any] | None = None,
        priority: int = 0,
        cpus: int = 1,
        max_attempts: int = 2,
        start_kernel: bool = True,
    ) -> JobInfo:
        """Queue a batch prediction of a dataset version; it registers a prediction set
        (`NAME@V`, default name `<model>-on-<dataset>`)."""
        return ops_jobs.submit_predict(
            self.context,
            model,
            data,
            name=name,
            column=column,
            backend=backend,
            priority=priority,
            cpus=cpus,
            max_attempts=max_attempts,
            start_kernel=start_kernel,
        )

    # --- watching -----------------------------------------------------------------------

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[JobInfo]:
        return ops_jobs.jobs(self.context, state, limit)

    def job(self, job_id: int | str) -> JobInfo:
        return ops_jobs.job(self.context, job_id)

    def wait_job(self, job_id: int | str, timeout: float | None = None, poll: float = 0.5) -> JobInfo:
        """Block until the job has finished; return it (raise JobError on timeout)."""
        return ops_jobs.wait_job(self.context, job_id, timeout, poll)

    def job_log(self, job_id: int | str) -> JobLog:
        return ops_jobs.job_log(self.context, job_id)

    def job_events(self, job_id: int | str, after: int = 0, poll: float = 0.3) -> Iterator[Any]:
        """The job's state changes, progress, log lines and finally its `end` event."""
        return ops_jobs.job_events(self.context, job_id, after, poll)

    def follow_log(self, job_id: int | str, poll: float = 0.5) -> Iterator[str]:
        """Lines of the job's log as they are written, until the job has finished."""
        for event in self.job_events(job_id, poll=poll):
            if event.type == "log":
                yield event.line

    # --- changing -----------------------------------------------------------------------

    def cancel_job(self, job_id: int | str, wait: float = 0.0) -> JobInfo:
        """Cancel a job; with `wait`, wait that long for a running one to end."""
        return ops_jobs.cancel_job(self.context, job_id, wait)

    def retry_job(self, job_id: int | str, start_kernel: bool = True) -> JobInfo:
        return ops_jobs.retry_job(self.context, job_id, start_kernel)

    def kernel_status(self) -> KernelStatus:
        return ops_jobs.kernel_status(self.context)

    # --- the kernel on this machine (not over HTTP) ---------------------------------------

    def run_kernel(
        self,
        cpus: int | None = None,
        gpus: int | None = None,
        memory_mb: int | None = None,
        until_idle: bool = False,
    ) -> None:
        """Run the scheduler in this process (`llmos kernel start`)."""
        ops_workspace.run_kernel(self.context, cpus, gpus, memory_mb, until_idle)

    def kernel_pid(self) -> int | None:
        return ops_workspace.kernel_pid(self.context)

    # --- prediction sets ----------------------------------------------------------------

    def prediction_sets(self, name: str | None = None) -> list[PredictionSetInfo]:
        return ops_predict.prediction_sets(self.context, name)

    def prediction_frame(self, ref: str) -> Any:
        return ops_workspace.prediction_frame(self.context, ref)
