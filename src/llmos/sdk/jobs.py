"""Jobs from Python: queue training, evaluation and batch prediction, watch, cancel and
retry them, and run the kernel. `Workspace` carries these methods; the CLI's `--detach`,
`llmos jobs ...` and `llmos kernel start` call them.

ws = llmos.Workspace()
job = ws.submit_train("spec.yaml", priority=5)   # starts a background kernel if none runs
ws.wait_job(job.id).result                         # {"model": "intents@3", ...}
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmos.core.errors import JobError
from llmos.core.settings import Settings
from llmos.kernel.resources import Resources
from llmos.spec.schema import TaskSpec
from llmos.store.db import Store
from llmos.store.schema import Job, PredictionSet
from llmos.train.jobs import EVAL_HANDLER, PREDICT_HANDLER, TRAIN_HANDLER

SpecLike = str | os.PathLike[str] | dict[str, Any] | TaskSpec


def to_spec(spec: SpecLike, backend: str | None = None) -> TaskSpec:
    """A validated spec from a file, a dict or a spec; `backend` overrides `backend.type`."""
    from llmos.spec import load_spec, parse_spec

    if isinstance(spec, TaskSpec):
        task = spec
    elif isinstance(spec, dict):
        task = parse_spec(spec)
    else:
        task = load_spec(spec)
    if backend is not None:
        data = task.model_dump(mode="json")
        data["backend"]["type"] = backend
        task = parse_spec(data, "--backend")
    return task


class JobsMixin:
    """The job methods of `Workspace`, which provides `settings` and `store`."""

    settings: Settings

    if TYPE_CHECKING:  # provided by Workspace; declared here for type checking only

        @property
        def store(self) -> Store: ...

    # --- submitting ---------------------------------------------------------------------

    def _submit(
        self,
        kind: str,
        name: str,
        handler: str,
        payload: dict[str, Any],
        *,
        priority: int,
        cpus: int,
        gpus: int,
        memory_mb: int,
        max_attempts: int,
        start_kernel: bool,
    ) -> Job:
        from llmos.kernel import jobs
        from llmos.kernel.scheduler import ensure_kernel

        job = jobs.submit(
            self.store,
            kind=kind,
            name=name,
            handler=handler,
            payload=payload,
            resources=Resources(cpus, gpus, memory_mb),
            priority=priority,
            max_attempts=max_attempts,
        )
        if start_kernel:
            ensure_kernel(self.settings)
        return job

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
    ) -> Job:
        """Queue a training run; its inputs are checked now, so a bad spec fails here.
        `cpus` (default: all of this machine's) is also the job's torch thread count."""
        from llmos.kernel.resources import machine_capacity
        from llmos.train.inputs import check_inputs

        task = to_spec(spec, backend)
        check_inputs(self.store, task)
        if cpus is None:
            cpus = machine_capacity().cpus
        if task.backend.type == "ray":
            cpus = max(cpus, task.backend.workers * task.backend.cpus_per_worker)
            gpus = max(gpus, task.backend.workers * task.backend.gpus_per_worker)
        return self._submit(
            "train",
            task.name,
            TRAIN_HANDLER,
            {"spec": task.model_dump(mode="json")},
            priority=priority,
            cpus=cpus,
            gpus=gpus,
            memory_mb=memory_mb,
            max_attempts=max_attempts,
            start_kernel=start_kernel,
        )

    def _model_and_dataset(self, model: str, data: str) -> tuple[Any, Any]:
        from llmos.store.datasets import get_dataset
        from llmos.store.models import get_model

        return get_model(self.store, model), get_dataset(self.store, data)

    def submit_eval(
        self, model: str, data: str, *, priority: int = 0, cpus: int = 1, start_kernel: bool = True
    ) -> Job:
        m, d = self._model_and_dataset(model, data)
        return self._submit(
            "eval",
            m.name,
            EVAL_HANDLER,
            {"model": m.ref, "data": d.ref},
            priority=priority,
            cpus=cpus,
            gpus=0,
            memory_mb=0,
            max_attempts=2,
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
    ) -> Job:
        """Queue a batch prediction of a dataset version; it registers a prediction set
        (`NAME@V`, default name `<model>-on-<dataset>`)."""
        from llmos.core.util import check_name
        from llmos.spec.schema import BackendConfig

        m, d = self._model_and_dataset(model, data)
        if name is not None:
            check_name(name, "prediction set name")
        ray = BackendConfig.model_validate(backend or {"type": "local"})
        if ray.type == "ray":
            cpus = max(cpus, ray.workers * ray.cpus_per_worker)
        payload = {"model": m.ref, "data": d.ref, "name": name, "column": column, "backend": ray.model_dump()}
        return self._submit(
            "batch-predict",
            m.name,
            PREDICT_HANDLER,
            payload,
            priority=priority,
            cpus=cpus,
            gpus=0,
            memory_mb=0,
            max_attempts=max_attempts,
            start_kernel=start_kernel,
        )

    # --- watching -----------------------------------------------------------------------

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[Job]:
        from llmos.kernel.jobs import list_jobs

        return list_jobs(self.store, state, limit)

    def job(self, job_id: int | str) -> Job:
        from llmos.kernel.jobs import get_job

        return get_job(self.store, job_id)

    def wait_job(self, job_id: int | str, timeout: float | None = None, poll: float = 0.5) -> Job:
        """Block until the job has finished; return it (raise JobError on timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise JobError(f"job {job.id} is still {job.state} after {timeout:.0f}s")
            time.sleep(poll)

    def job_log(self, job_id: int | str) -> str:
        path = Path(self.job(job_id).log_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def follow_log(self, job_id: int | str, poll: float = 0.5) -> Iterator[str]:
        """Lines of the job's log as they are written, until the job has finished."""
        job = self.job(job_id)
        path, offset = Path(job.log_path), 0
        while True:
            finished = self.job(job.id).finished  # read before the file: no line is missed
            if path.exists():
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                # only whole lines; a partial last line waits for the next pass
                cut = chunk.rfind(b"\n") + 1 if not finished else len(chunk)
                offset += cut
                yield from chunk[:cut].decode(errors="replace").splitlines()
            if finished:
                return
            time.sleep(poll)

    # --- changing -----------------------------------------------------------------------

    def cancel_job(self, job_id: int | str, wait: float = 0.0) -> Job:
        """Cancel a job; with `wait`, wait that long for a running one to end."""
        from llmos.kernel.jobs import request_cancel

        job = request_cancel(self.store, job_id)
        if wait and not job.finished:
            try:
                return self.wait_job(job.id, timeout=wait, poll=0.1)
            except JobError:
                return self.job(job.id)
        return job

    def retry_job(self, job_id: int | str, start_kernel: bool = True) -> Job:
        from llmos.kernel.jobs import retry
        from llmos.kernel.scheduler import ensure_kernel

        job = retry(self.store, job_id)
        if start_kernel:
            ensure_kernel(self.settings)
        return job

    def run_kernel(
        self,
        cpus: int | None = None,
        gpus: int | None = None,
        memory_mb: int | None = None,
        until_idle: bool = False,
    ) -> None:
        """Run the scheduler in this process (`llmos kernel start`)."""
        from llmos.kernel.resources import machine_capacity
        from llmos.kernel.scheduler import Scheduler

        Scheduler(self.store, machine_capacity(cpus, gpus, memory_mb)).run(until_idle=until_idle)

    def kernel_pid(self) -> int | None:
        from llmos.kernel.scheduler import kernel_pid

        return kernel_pid(self.settings)

    # --- prediction sets ----------------------------------------------------------------

    def prediction_sets(self, name: str | None = None) -> list[PredictionSet]:
        from llmos.store.predictions import list_predictions

        return list_predictions(self.store, name)

    def prediction_frame(self, ref: str) -> Any:
        from llmos.store.predictions import get_predictions, load_predictions

        return load_predictions(self.store, get_predictions(self.store, ref))
