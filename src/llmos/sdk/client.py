"""`llmos.Client`: the Python client of a running `llmos serve`.

Standard library only (urllib), so a client machine needs nothing but llmos. Errors
the server reports come back as the matching `LlmosError` with the server's one-line
message; `status` holds the HTTP code. The OpenAI-compatible routes also work with the
official `openai` package (point its `base_url` at `URL/v1`).

`token` (default: the `LLMOS_TOKEN` environment variable) is sent as a bearer token; a
server answers 401 without a usable one and 403 when its role does not allow the call.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import EllipsisType
from typing import Any

from llmos.apps.watch.operations import (
    IngestReceipt,
    WatchAlertInfo,
    WatchInfo,
    WatchPlot,
    WatchSeries,
    WatchStatus,
    WatchTextInfo,
)
from llmos.core.errors import JobError, LlmosError, NotFoundError, SpecError, UsageError
from llmos.ops.adaptation import AdaptJob, AdaptPlan, AdaptResult, Decision, LabelSuggestions
from llmos.ops.audit import AuditEventInfo, AuditVerdict
from llmos.ops.datasets import DatasetInfo, DatasetRows, ImportInfo
from llmos.ops.deployments import DeploymentInfo, TrafficInfo
from llmos.ops.feedback import FeedbackEvent, FeedbackImport, FeedbackReceipt, LabelledFeedback
from llmos.ops.jobs import JobInfo, JobLog, KernelStatus, follow_events
from llmos.ops.keys import EncryptionStatus, KeyRotation
from llmos.ops.knowledge import CollectionInfo, ImportedCollection, SearchResult
from llmos.ops.models import Lineage, ModelFile, ModelInfo, ZooModel
from llmos.ops.monitoring import AlertInfo, MonitorReport
from llmos.ops.predict import Predictions, PredictionSetInfo
from llmos.ops.projects import ProjectInfo
from llmos.ops.recommend import Recommendations
from llmos.ops.schedules import ScheduleInfo
from llmos.ops.specs import SpecCheck, spec_text
from llmos.ops.support import AssistantInfo, HandoffInfo, SupportReply, SupportSessionInfo
from llmos.ops.tracking import ExportedRun, RunMetrics
from llmos.ops.users import NewToken, TokenInfo, UserInfo

CHUNK = 1024 * 1024  # bytes an upload sends at a time


def _q(part: str) -> str:
    """A path segment (names may hold characters a URL path cannot)."""
    return urllib.parse.quote(str(part), safe="@")


class ServerError(LlmosError):
    """An error answer from the server; `status` is its HTTP code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(
        self, url: str, token: str | None = None, timeout: float = 120.0, project: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("LLMOS_TOKEN")
        self.timeout = timeout
        # sent as the `LLMOS-Project` header on every call (F17); none: the server's default
        self.project = project if project is not None else os.environ.get("LLMOS_PROJECT")

    # --- routes ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")

    # datasets

    def import_dataset(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        label: str | None = None,
        format: str | None = None,
        pii: str = "off",
    ) -> ImportInfo:
        """Upload a file (streamed, never held in memory whole) and import it as a dataset
        version on the server."""
        fields = {"name": name, "label": label, "format": format, "pii": pii}
        answer = self._upload("/v1/datasets", Path(path), {k: v for k, v in fields.items() if v is not None})
        return ImportInfo(**answer)

    def datasets(self, name: str | None = None) -> list[DatasetInfo]:
        query = f"?{urllib.parse.urlencode({'name': name})}" if name else ""
        return [DatasetInfo(**row) for row in self._call("GET", f"/v1/datasets{query}")]

    def dataset(self, ref: str) -> DatasetInfo:
        return DatasetInfo(**self._call("GET", f"/v1/datasets/{_q(ref)}"))

    def dataset_rows(self, ref: str, limit: int = 10) -> DatasetRows:
        return DatasetRows(**self._call("GET", f"/v1/datasets/{_q(ref)}/rows?limit={int(limit)}"))

    # knowledge collections

    def import_collection(
        self,
        paths: list[str | os.PathLike[str]],
        name: str,
        *,
        chunk_size: int = 150,
        chunk_overlap: int = 30,
        encoder: str = "minilm",
        question: str = "question",
        answer: str = "answer",
        pii: str = "off",
    ) -> ImportedCollection:
        """Upload files (several travel as one zip) and import them as a collection version."""
        fields = {
            "name": name,
            "chunk_size": str(chunk_size),
            "chunk_overlap": str(chunk_overlap),
            "encoder": encoder,
            "question": question,
            "answer": answer,
            "pii": pii,
        }
        with _bundle(paths) as file:
            return ImportedCollection(**self._upload("/v1/knowledge", file, fields))

    def collections(self, name: str | None = None) -> list[CollectionInfo]:
        query = f"?{urllib.parse.urlencode({'name': name})}" if name else ""
        return [CollectionInfo(**row) for row in self._call("GET", f"/v1/knowledge{query}")]

    def collection(self, ref: str) -> CollectionInfo:
        return CollectionInfo(**self._call("GET", f"/v1/knowledge/{_q(ref)}"))

    def search_collection(
        self,
        name: str,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        fusion: str = "rrf",
        weight: float = 0.5,
        filters: dict[str, Any] | None = None,
    ) -> SearchResult:
        body = {"query": query, "k": k, "mode": mode, "fusion": fusion, "weight": weight, "filters": filters}
        return SearchResult(**self._call("POST", f"/v1/knowledge/{_q(name)}/search", body))

    def add_documents(
        self,
        name: str,
        paths: list[str | os.PathLike[str]],
        *,
        question: str = "question",
        answer: str = "answer",
        pii: str = "off",
    ) -> CollectionInfo:
        fields = {"name": name, "question": question, "answer": answer, "pii": pii}
        with _bundle(paths) as file:
            return CollectionInfo(**self._upload("/v1/knowledge/documents", file, fields))

    def delete_documents(self, name: str, sources: list[str]) -> CollectionInfo:
        query = urllib.parse.urlencode([("source", s) for s in sources])
        return CollectionInfo(**self._call("DELETE", f"/v1/knowledge/{_q(name)}/documents?{query}"))

    # specs

    def check_spec(self, spec: dict[str, Any] | str | os.PathLike[str], source: str = "spec") -> SpecCheck:
        """Check a spec on the server; `SpecError` (with `.problems`) lists every problem."""
        body, source = spec_text(spec, source)
        return SpecCheck(**self._call("POST", "/v1/specs/check", {"spec": body, "source": source}))

    def spec_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = self._call("GET", "/v1/specs/schema")
        return schema

    # the model registry

    def models(self, name: str | None = None, limit: int | None = None, offset: int = 0) -> list[ModelInfo]:
        found = {"name": name, "limit": limit, "offset": offset or None}
        params = {k: v for k, v in found.items() if v is not None}
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return [ModelInfo(**row) for row in self._call("GET", f"/v1/registry/models{query}")]

    def model(self, ref: str) -> ModelInfo:
        return ModelInfo(**self._call("GET", f"/v1/registry/models/{_q(ref)}"))

    def share_model(self, ref: str, project: str) -> ModelInfo:
        return ModelInfo(**self._call("POST", f"/v1/registry/models/{_q(ref)}/share", {"project": project}))

    def lineage(self, ref: str) -> Lineage:
        return Lineage(**self._call("GET", f"/v1/registry/models/{_q(ref)}/lineage"))

    def model_files(self, ref: str) -> list[ModelFile]:
        return [ModelFile(**row) for row in self._call("GET", f"/v1/registry/models/{_q(ref)}/files")]

    def model_file(self, ref: str, path: str) -> bytes:
        where = urllib.parse.quote(path, safe="/")
        with self._open("GET", f"/v1/registry/models/{_q(ref)}/files/{where}") as response:
            data: bytes = response.read()
            return data

    def zoo(self) -> list[ZooModel]:
        return [ZooModel(**row) for row in self._call("GET", "/v1/registry/zoo")]

    def run_metrics(self, ref: str, names: list[str] | None = None) -> RunMetrics:
        query = {"names": ",".join(names)} if names else None
        return RunMetrics(**self._call("GET", f"/v1/registry/models/{_q(ref)}/metrics", query=query))

    def export_run(self, ref: str, to: str) -> ExportedRun:
        return ExportedRun(**self._call("POST", f"/v1/registry/models/{_q(ref)}/export", {"to": to}))

    # deployments

    def deployments(self) -> list[DeploymentInfo]:
        return [DeploymentInfo(**row) for row in self._call("GET", "/v1/deployments")]

    def deployment(self, name: str) -> DeploymentInfo:
        return DeploymentInfo(**self._call("GET", f"/v1/deployments/{_q(name)}"))

    def traffic(self, name: str, seconds: int = 900) -> TrafficInfo:
        """The answering server's recent traffic of a deployment (`GET .../traffic`)."""
        query = {"seconds": seconds}
        return TrafficInfo(**self._call("GET", f"/v1/deployments/{_q(name)}/traffic", query=query))

    def deploy(
        self, model: str, name: str, *, optimize: str | None = None, pin: bool = False
    ) -> DeploymentInfo:
        body = {"model": model, "name": name, "optimize": optimize, "pin": pin}
        return DeploymentInfo(**self._call("POST", "/v1/deployments", body))

    def undeploy(self, name: str) -> DeploymentInfo:
        return DeploymentInfo(**self._call("DELETE", f"/v1/deployments/{_q(name)}"))

    # schedules

    def add_schedule(
        self,
        name: str,
        job: list[str] | str,
        *,
        every: str | int | None = None,
        cron: str | None = None,
        paused: bool = False,
        start_kernel: bool = True,
    ) -> ScheduleInfo:
        """`start_kernel` is the server's: it starts its kernel for an active schedule."""
        body = {"name": name, "job": job, "every": every, "cron": cron, "paused": paused}
        return ScheduleInfo(**self._call("POST", "/v1/schedules", body))

    def schedules(self) -> list[ScheduleInfo]:
        return [ScheduleInfo(**r) for r in self._call("GET", "/v1/schedules")]

    def schedule(self, name: str) -> ScheduleInfo:
        return ScheduleInfo(**self._call("GET", f"/v1/schedules/{_q(name)}"))

    def pause_schedule(self, name: str) -> ScheduleInfo:
        return ScheduleInfo(**self._call("POST", f"/v1/schedules/{_q(name)}/pause"))

    def resume_schedule(self, name: str, start_kernel: bool = True) -> ScheduleInfo:
        return ScheduleInfo(**self._call("POST", f"/v1/schedules/{_q(name)}/resume"))

    def remove_schedule(self, name: str) -> ScheduleInfo:
        return ScheduleInfo(**self._call("DELETE", f"/v1/schedules/{_q(name)}"))

    def predict(
        self, deployment: str, inputs: str | list[str] | list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Labels and probabilities (or a model's own outputs), one dict per input; rows of
        multi-input models are dicts of column values."""
        texts = [inputs] if isinstance(inputs, str) else inputs
        answer = self._call("POST", f"/v1/deployments/{_q(deployment)}/predict", {"inputs": texts})
        return answer["predictions"]

    def recommend(
        self,
        deployment: str,
        user: str | None = None,
        items: list[str] | None = None,
        k: int = 10,
        exclude: list[str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Recommendations:
        body = {"user": user, "items": items or [], "k": k, "exclude": exclude or [], "filters": filters}
        return Recommendations(**self._call("POST", f"/v1/deployments/{_q(deployment)}/recommend", body))

    def submit_feedback(
        self,
        deployment: str,
        request_id: str,
        *,
        index: int | None = None,
        label: str | None = None,
        rating: int | None = None,
        answer: str | None = None,
        new_label: bool = False,
    ) -> FeedbackReceipt:
        """Tell the server the correct label, a rating (1-5) or a corrected answer for a
        served prediction (`request_id` and, for multi-input requests, `index`). Returns
        once the feedback is durably stored: its `feedback_id` and the `model` that answered."""
        body = {"request_id": request_id, "index": index, "label": label, "rating": rating}
        body |= {"answer": answer, "new_label": new_label}
        return FeedbackReceipt(**self._call("POST", f"/v1/deployments/{_q(deployment)}/feedback", body))

    def feedback(self, deployment: str, limit: int | str | None = None, **submit: Any) -> Any:
        """Feedback events of a deployment, newest first (as `Workspace.feedback`).

        Earlier releases submitted feedback with `feedback(deployment, request_id, label=...)`;
        that call still works (use `submit_feedback`)."""
        if isinstance(limit, str) or submit:
            import warnings

            warnings.warn("Client.feedback(deployment, request_id, ...) submits feedback: use "
                          "submit_feedback", DeprecationWarning, stacklevel=2)  # fmt: skip
            return self.submit_feedback(deployment, str(limit), **submit)
        rows = self._call("GET", f"/v1/deployments/{_q(deployment)}/feedback", query={"limit": limit})
        return [FeedbackEvent(**r) for r in rows]

    def labelled_feedback(self, deployment: str, after_id: int = 0) -> list[LabelledFeedback]:
        path = f"/v1/deployments/{_q(deployment)}/feedback/labelled"
        return [LabelledFeedback(**r) for r in self._call("GET", path, query={"after_id": after_id})]

    def import_feedback(
        self, path: str | os.PathLike[str], deployment: str, *, new_labels: bool = False
    ) -> FeedbackImport:
        """Upload a CSV/JSONL file of feedback; the server stores all rows or none."""
        fields = {"deployment": deployment, "new_labels": "true" if new_labels else "false"}
        return FeedbackImport(**self._upload("/v1/feedback/import", Path(path), fields))

    # --- users, tokens, audit, keys (admins) -----------------------------------------

    # --- projects (F17) ----------------------------------------------------------------

    def projects(self) -> list[ProjectInfo]:
        return [ProjectInfo(**r) for r in self._call("GET", "/v1/projects")]

    def project_show(self, name: str) -> ProjectInfo:
        return ProjectInfo(**self._call("GET", f"/v1/projects/{_q(name)}"))

    def project_create(self, name: str, description: str = "") -> ProjectInfo:
        return ProjectInfo(**self._call("POST", "/v1/projects", {"name": name, "description": description}))

    def project_delete(self, name: str) -> ProjectInfo:
        return ProjectInfo(**self._call("DELETE", f"/v1/projects/{_q(name)}"))

    def project_member_add(self, name: str, user: str, role: str = "developer") -> ProjectInfo:
        path = f"/v1/projects/{_q(name)}/members/{_q(user)}"
        return ProjectInfo(**self._call("PUT", path, {"role": role}))

    def project_member_remove(self, name: str, user: str) -> ProjectInfo:
        return ProjectInfo(**self._call("DELETE", f"/v1/projects/{_q(name)}/members/{_q(user)}"))

    def project_quota(
        self,
        name: str,
        max_concurrent_jobs: int | None = None,
        cpu_minutes_per_day: float | None = None,
        requests_per_day: int | None = None,
        max_stored_bytes: int | None = None,
        gpu_hours_per_day: float | None = None,
    ) -> ProjectInfo:
        body = {
            "max_concurrent_jobs": max_concurrent_jobs,
            "cpu_minutes_per_day": cpu_minutes_per_day,
            "requests_per_day": requests_per_day,
            "max_stored_bytes": max_stored_bytes,
            "gpu_hours_per_day": gpu_hours_per_day,
        }
        return ProjectInfo(**self._call("PATCH", f"/v1/projects/{_q(name)}/quotas", body))

    def suspend_token(self, token: str, resume: bool = False) -> TokenInfo:
        return TokenInfo(**self._call("POST", f"/v1/tokens/{_q(str(token))}/suspend", {"resume": resume}))

    def suspend_user(self, name: str, resume: bool = False) -> UserInfo:
        return UserInfo(**self._call("POST", f"/v1/users/{_q(name)}/suspend", {"resume": resume}))

    def users(self) -> list[UserInfo]:
        return [UserInfo(**r) for r in self._call("GET", "/v1/users")]

    def add_user(self, name: str, role: str = "developer") -> UserInfo:
        return UserInfo(**self._call("POST", "/v1/users", {"name": name, "role": role}))

    def remove_user(self, name: str) -> UserInfo:
        return UserInfo(**self._call("DELETE", f"/v1/users/{_q(name)}"))

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        return [TokenInfo(**r) for r in self._call("GET", "/v1/tokens", query={"user": user})]

    def create_token(
        self,
        user: str,
        role: str | None = None,
        expires: str | None = None,
        deployments: list[str] | None = None,
    ) -> NewToken:
        body = {"user": user, "role": role, "expires": expires, "deployments": deployments}
        return NewToken(**self._call("POST", "/v1/tokens", body))

    def revoke_token(self, token: str | int) -> TokenInfo:
        """By id, prefix or the token itself (which is not sent: only its prefix is)."""
        from llmos.security.identities import PREFIX_CHARS

        ident = str(token)
        if not ident.isdigit():
            ident = ident[:PREFIX_CHARS]
        return TokenInfo(**self._call("DELETE", f"/v1/tokens/{_q(ident)}"))

    def audit_events(
        self, since: datetime | None = None, limit: int | None = None, project: str | None = None
    ) -> list[AuditEventInfo]:
        """Audit events, oldest first (of one `project`); with `limit`, the newest N."""
        query = {"since": None if since is None else since.isoformat(), "limit": limit, "project": project}
        return [AuditEventInfo(**r) for r in self._call("GET", "/v1/audit", query=query)]

    def verify_audit(self) -> AuditVerdict:
        return AuditVerdict(**self._call("GET", "/v1/audit/verify"))

    def encryption_status(self) -> EncryptionStatus:
        return EncryptionStatus(**self._call("GET", "/v1/keys"))

    def rotate_key(self, new_key_file: str | os.PathLike[str] | None = None) -> KeyRotation:
        """Rotate to a fresh random master key, which the server writes to its key file."""
        if new_key_file is not None:
            raise UsageError(
                "--new-key-file names a file on the workspace's machine: rotate to a given key there "
                "(without --url); over HTTP the server makes a fresh key"
            )
        return KeyRotation(**self._call("POST", "/v1/keys/rotate"))

    def enable_encryption(self) -> Any:
        raise UsageError(
            "encryption at rest is turned on where the workspace is (`llmos keys enable` without --url, "
            "with the server stopped): it rewrites every stored file"
        )

    # --- monitoring and adaptation -----------------------------------------------------

    def monitor(
        self,
        deployment: str,
        *,
        png: str | os.PathLike[str] | None = None,
        thresholds: Any = None,
        webhook: str | None = None,
        progress: Any = None,
        **options: Any,
    ) -> MonitorReport:
        """The drift report of a deployment (`Workspace.monitor`); `png` is written here."""
        if webhook is not None:
            raise UsageError("--webhook is for monitoring where the workspace is, not over --url")
        unknown = set(options) - {"window", "last", "embedder", "fire"}
        if unknown:
            raise UsageError(f"monitor options {', '.join(sorted(unknown))} are not offered over HTTP")
        if thresholds is not None and not isinstance(thresholds, dict):
            from dataclasses import asdict

            thresholds = asdict(thresholds)
        query = {**options, **(thresholds or {}), "chart": png is not None}
        report = MonitorReport(**self._call("GET", f"/v1/deployments/{_q(deployment)}/monitor", query=query))
        if png is not None and report.chart is not None:
            import base64

            target = Path(png)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(base64.b64decode(report.chart))
            tmp.replace(target)
            report.png, report.chart = str(png), None
        return report

    def alerts(self, deployment: str | None = None, limit: int | None = None) -> list[AlertInfo]:
        rows = self._call("GET", "/v1/alerts", query={"deployment": deployment, "limit": limit})
        return [AlertInfo(**r) for r in rows]

    def submit_adapt(
        self,
        deployment: str,
        *,
        data: str | None = None,
        cpus: int = 1,
        start_kernel: bool = True,
        wait: bool = False,
        **settings: Any,
    ) -> AdaptJob:
        """Queue `adapt` on the server (which runs its kernel); `wait` answers once it has ended."""
        body = {"data": data, "cpus": cpus, "wait": wait, **settings}
        path = f"/v1/deployments/{_q(deployment)}/adapt"
        return AdaptJob(**self._call("POST", path, body, timeout=None if wait else self.timeout))

    def adapt(
        self, deployment: str, *, data: str | None = None, cpus: int = 1, **settings: Any
    ) -> AdaptResult:
        """`submit_adapt`, then wait: the gate's decision (`JobError` if the job failed)."""
        from llmos.ops.adaptation import adapt_result

        return adapt_result(self.submit_adapt(deployment, data=data, cpus=cpus, wait=True, **settings))

    def plan_adapt(self, deployment: str, *, data: str | None = None, **settings: Any) -> AdaptPlan:
        path = f"/v1/deployments/{_q(deployment)}/adapt/plan"
        return AdaptPlan(**self._call("POST", path, {"data": data, **settings}))

    def adapt_history(self, deployment: str) -> list[Decision]:
        return [Decision(**r) for r in self._call("GET", f"/v1/deployments/{_q(deployment)}/adapt/history")]

    def rollback(self, deployment: str, reason: str = "") -> Decision:
        return Decision(
            **self._call("POST", f"/v1/deployments/{_q(deployment)}/rollback", {"reason": reason})
        )

    def suggest_labels(
        self,
        dataset: str,
        model: str,
        k: int = 50,
        strategy: str = "margin",
        out: str | os.PathLike[str] | None = None,
    ) -> LabelSuggestions:
        """The k rows most worth labelling; `out` (CSV or JSONL) is written here."""
        if out is not None and Path(out).suffix.lower() not in (".csv", ".jsonl"):
            raise UsageError(f"--out {out}: use a .csv or .jsonl file")
        body = {"dataset": dataset, "model": model, "k": k, "strategy": strategy}
        found = LabelSuggestions(**self._call("POST", "/v1/labels/suggest", body))
        if out is not None:
            _write_rows(Path(out), found.records)
            found.out = str(out)
        return found

    def embed(self, deployment: str, inputs: str | list[str]) -> list[list[float]]:
        body = {"model": deployment, "input": inputs, "encoding_format": "float"}
        answer = self._call("POST", "/v1/embeddings", body)
        return [row["embedding"] for row in answer["data"]]

    def chat(self, deployment: str, messages: list[dict[str, str]], **sampling: Any) -> str:
        """The assistant's answer to OpenAI-format `messages` (sampling: max_tokens, temperature...)."""
        body = {"model": deployment, "messages": messages, **sampling}
        answer = self._call("POST", "/v1/chat/completions", body)
        return answer["choices"][0]["message"]["content"]

    def chat_stream(self, deployment: str, messages: list[dict[str, str]], **sampling: Any) -> Iterator[str]:
        """The answer's text as it is generated (server-sent events)."""
        body = {"model": deployment, "messages": messages, "stream": True, **sampling}
        with self._open("POST", "/v1/chat/completions", body) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    raise ServerError(event["error"]["message"], 500)
                text = event["choices"][0]["delta"].get("content") if event["choices"] else None
                if text:
                    yield text

    def complete(self, deployment: str, prompt: str, **sampling: Any) -> str:
        answer = self._call("POST", "/v1/completions", {"model": deployment, "prompt": prompt, **sampling})
        return answer["choices"][0]["text"]

    # --- jobs (the training plane) --------------------------------------------------

    def submit_train(
        self,
        spec: Any,
        *,
        priority: int = 0,
        cpus: int | None = None,
        gpus: int = 0,
        memory_mb: int = 0,
        max_attempts: int = 2,
        backend: str | None = None,
        start_kernel: bool = True,
    ) -> JobInfo:
        """Queue training on the server. `spec`: a file on this machine (read here and sent
        as a JSON object), a mapping, YAML text or a `TaskSpec`. The server checks it (every
        problem listed in the `SpecError`) and starts its kernel (`start_kernel` is for
        parity with `Workspace`; a server always does)."""
        body = {
            "kind": "train",
            "spec": _spec_body(spec),
            "priority": priority,
            "cpus": cpus,
            "gpus": gpus,
            "memory_mb": memory_mb,
            "max_attempts": max_attempts,
            "backend": backend,
        }
        return JobInfo(**self._call("POST", "/v1/jobs", body))

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
        body: dict[str, Any] = {"kind": "eval", "model": model, "data": data, "optimize": optimize}
        body |= {"priority": priority, "cpus": cpus, "max_attempts": max_attempts}
        return JobInfo(**self._call("POST", "/v1/jobs", body))

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
        body: dict[str, Any] = {"kind": "predict", "model": model, "data": data, "name": name}
        body["column"] = column
        body |= {"backend": backend, "priority": priority, "cpus": cpus, "max_attempts": max_attempts}
        return JobInfo(**self._call("POST", "/v1/jobs", body))

    def jobs(self, state: str | None = None, limit: int | None = None) -> list[JobInfo]:
        query = urllib.parse.urlencode(
            {k: v for k, v in (("state", state), ("limit", limit)) if v is not None}
        )
        return [JobInfo(**row) for row in self._call("GET", "/v1/jobs" + (f"?{query}" if query else ""))]

    def job(self, job_id: int | str) -> JobInfo:
        return JobInfo(**self._call("GET", f"/v1/jobs/{_job_id(job_id)}"))

    def job_log(self, job_id: int | str) -> JobLog:
        return JobLog(**self._call("GET", f"/v1/jobs/{_job_id(job_id)}/log"))

    def cancel_job(self, job_id: int | str, wait: float = 0.0) -> JobInfo:
        """Cancel a job (409, a `JobError`, when it has finished); `wait` up to 30 s."""
        return JobInfo(**self._call("POST", f"/v1/jobs/{_job_id(job_id)}/cancel?wait={min(wait, 30)}"))

    def retry_job(self, job_id: int | str, start_kernel: bool = True) -> JobInfo:
        return JobInfo(**self._call("POST", f"/v1/jobs/{_job_id(job_id)}/retry"))

    def kernel_status(self) -> KernelStatus:
        return KernelStatus(**self._call("GET", "/v1/kernel"))

    def prediction_sets(self, name: str | None = None) -> list[PredictionSetInfo]:
        query = f"?{urllib.parse.urlencode({'name': name})}" if name else ""
        return [PredictionSetInfo(**row) for row in self._call("GET", f"/v1/prediction-sets{query}")]

    def job_events(self, job_id: int | str, after: int = 0, poll: float = 0.3) -> Iterator[Any]:
        """The job's events as the server streams them (the same models `Workspace` yields):
        state changes, progress, log lines and finally `end`. A dropped connection is
        resumed where it stopped (`Last-Event-ID`) a few times before giving up."""
        path = f"/v1/jobs/{_job_id(job_id)}/events"
        cursor, tries = after, 0
        while True:
            try:
                with self._open("GET", f"{path}?after={cursor}") as response:
                    for event in _read_events(response):
                        tries = 0
                        cursor = event.id
                        yield event
                        if event.type == "end":
                            return
            except (OSError, http.client.HTTPException) as exc:
                tries += 1
                if tries > 5:
                    raise UsageError(f"lost the event stream of job {job_id} at {self.url}: {exc}") from None
                time.sleep(min(2.0, 0.2 * tries))

    def wait_job(self, job_id: int | str, timeout: float | None = None, poll: float = 0.5) -> JobInfo:
        """Block until the job has finished (following its event stream); `JobError` after
        `timeout` seconds."""
        if timeout is None:
            for event in self.job_events(job_id):
                if event.type == "end":
                    return event.info
        deadline = time.monotonic() + (timeout or 0)
        while True:
            job = self.job(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise JobError(f"job {job.id} is still {job.state} after {timeout:.0f}s")
            time.sleep(poll)

    def follow_log(self, job_id: int | str, poll: float = 0.5) -> Iterator[str]:
        for event in self.job_events(job_id):
            if event.type == "log":
                yield event.line

    def predict_model(
        self, model: str, inputs: str | list[Any], progress: Any = None, explain: bool = False
    ) -> Predictions:
        """Predictions of a registered model (NAME or NAME@V), computed in the server's
        process (`predict` calls a deployment); `explain` adds per-token explanations."""
        rows = [inputs] if isinstance(inputs, str) else inputs
        body: dict[str, Any] = {"inputs": rows}
        if explain:
            body["explain"] = True
        answer = self._call("POST", f"/v1/registry/models/{_q(model)}/predict", body)
        return Predictions(**answer)

    def evaluate(
        self, model: str, data: str, progress: Any = None, optimize: str | None = None
    ) -> dict[str, Any]:
        """Metrics of `model` on `data`: an evaluation job on the server, followed to its
        end (`progress` is shown the job's progress); raises the job's failure."""
        job = self.submit_eval(model, data, optimize=optimize)
        done = follow_events(self.job_events(job.id), progress)
        if done.state != "succeeded":
            raise JobError(f"job {done.id} {done.state}: {done.error}")
        return (done.result or {})["metrics"]

    # --- transport -------------------------------------------------------------------

    # opinion watches

    def create_watch(
        self,
        name: str,
        classifier: str,
        *,
        entities: str | None = None,
        topics: list[str] | str | dict[str, list[str]] | None = None,
        topic_column: str | None = None,
        bucket: str = "hour",
        negative: str | None = None,
        text_column: str = "text",
        time_column: str = "timestamp",
        id_column: str = "id",
        detector: dict[str, Any] | None = None,
        webhook: str | None = None,
    ) -> WatchInfo:
        if webhook is not None:
            raise UsageError("--webhook is set where the workspace is, not over --url")
        body = {
            "name": name, "classifier": classifier, "entities": entities, "topics": topics,
            "topic_column": topic_column, "bucket": bucket, "negative": negative, "text_column": text_column,
            "time_column": time_column, "id_column": id_column, "detector": detector,
        }  # fmt: skip
        return WatchInfo(**self._call("POST", "/v1/watches", body))

    def watches(self) -> list[WatchInfo]:
        return [WatchInfo(**r) for r in self._call("GET", "/v1/watches")]

    def watch_status(self, name: str) -> WatchStatus:
        return WatchStatus(**self._call("GET", f"/v1/watches/{_q(name)}"))

    def ingest_watch(self, name: str, rows: list[dict[str, Any]]) -> IngestReceipt:
        return IngestReceipt(**self._call("POST", f"/v1/watches/{_q(name)}/texts", {"rows": rows}))

    def backfill_watch(
        self, name: str, data: str, *, cpus: int = 1, start_kernel: bool = True, backend: str = "local",
        workers: int = 2,
    ) -> JobInfo:  # fmt: skip
        """`start_kernel` is the server's: it starts its kernel for the job."""
        body = {"data": data, "cpus": cpus, "backend": backend, "workers": workers}
        return JobInfo(**self._call("POST", f"/v1/watches/{_q(name)}/backfill", body))

    def watch_series(self, name: str, series: str = "all") -> WatchSeries:
        return WatchSeries(**self._call("GET", f"/v1/watches/{_q(name)}/series", query={"series": series}))

    def watch_texts(
        self, name: str, bucket: str | datetime | None = None, series: str = "all", limit: int = 20
    ) -> list[WatchTextInfo]:
        at = bucket.isoformat() if isinstance(bucket, datetime) else bucket
        query = {"bucket": at, "series": series, "limit": limit}
        return [WatchTextInfo(**r) for r in self._call("GET", f"/v1/watches/{_q(name)}/texts", query=query)]

    def watch_alerts(self, name: str, open_only: bool = False) -> list[WatchAlertInfo]:
        rows = self._call("GET", f"/v1/watches/{_q(name)}/alerts", query={"open_only": open_only})
        return [WatchAlertInfo(**r) for r in rows]

    def ack_watch_alert(self, name: str, alert_id: int) -> WatchAlertInfo:
        return WatchAlertInfo(**self._call("POST", f"/v1/watches/{_q(name)}/alerts/{int(alert_id)}/ack"))

    def plot_watch(
        self, name: str, series: str = "all", png: str | os.PathLike[str] | None = None
    ) -> WatchPlot:
        plot = WatchPlot(**self._call("GET", f"/v1/watches/{_q(name)}/plot", query={"series": series}))
        if png is not None and plot.chart is not None:
            import base64

            target = Path(png)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(base64.b64decode(plot.chart))
            tmp.replace(target)
            plot.png, plot.chart = str(png), None
        return plot

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str = "application/json",
        timeout: float | EllipsisType | None = ...,
    ) -> Any:
        if data is None and body is not None:
            data = json.dumps(body).encode()
        url = self.url + path
        params = {k: _param(v) for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if self.project:
            request.add_header("LLMOS-Project", self.project)
        wait: float | None = self.timeout
        if not isinstance(timeout, EllipsisType):
            wait = timeout
        try:
            return urllib.request.urlopen(request, timeout=wait)
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except urllib.error.URLError as exc:
            raise UsageError(f"cannot reach the llmos server at {self.url}: {exc.reason}") from None

    # the customer-service assistant

    def support_create(self, name: str, config: dict[str, Any] | None = None) -> AssistantInfo:
        body = {"name": name, "config": config or {}}
        return AssistantInfo(**self._call("POST", "/v1/support/assistants", body))

    def support_assistants(self) -> list[AssistantInfo]:
        return [AssistantInfo(**row) for row in self._call("GET", "/v1/support/assistants")]

    def support_open(self, assistant: str) -> SupportSessionInfo:
        return SupportSessionInfo(**self._call("POST", "/v1/support/sessions", {"assistant": assistant}))

    def support_ask(self, session: str, message: str) -> SupportReply:
        path = f"/v1/support/sessions/{_q(session)}/messages"
        return SupportReply(**self._call("POST", path, {"message": message}))

    def support_session(self, session: str) -> SupportSessionInfo:
        return SupportSessionInfo(**self._call("GET", f"/v1/support/sessions/{_q(session)}"))

    def support_handoffs(self, assistant: str | None = None) -> list[HandoffInfo]:
        query = f"?assistant={urllib.parse.quote(assistant)}" if assistant else ""
        return [HandoffInfo(**row) for row in self._call("GET", f"/v1/support/handoffs{query}")]

    def _call(self, method: str, path: str, body: Any = None, **options: Any) -> Any:
        with self._open(method, path, body, **options) as response:
            return json.loads(response.read())

    def _upload(self, path: str, file: Path, fields: dict[str, str]) -> Any:
        """POST `file` and `fields` as multipart/form-data, the file read and sent in chunks.
        http.client rather than urllib: a server refusing the upload part-way (413) closes
        the connection, and its answer is still read after the failed send."""
        import http.client

        if file.is_dir():
            raise UsageError(
                f"{file}: is a folder; a server takes one uploaded file (import a folder of images "
                "on the server's machine, or list the images in a CSV)"
            )
        if not file.is_file():
            raise NotFoundError(f"{file}: no such file")
        boundary = f"llmos-{uuid.uuid4().hex}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        filename = file.name.replace('"', "%22").replace("\r", "").replace("\n", "")
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        url = urllib.parse.urlsplit(self.url + path)
        connection_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(url.netloc, timeout=self.timeout)
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            connection.putrequest("POST", target)
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            connection.putheader("Content-Length", str(len(head) + file.stat().st_size + len(tail)))
            if self.token:
                connection.putheader("Authorization", f"Bearer {self.token}")
            if self.project:
                connection.putheader("LLMOS-Project", self.project)
            connection.endheaders()
            try:
                connection.send(head)
                with file.open("rb") as source:
                    while chunk := source.read(CHUNK):
                        connection.send(chunk)
                connection.send(tail)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused part-way: the answer says why
            try:
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise UsageError(
                    f"the llmos server at {self.url} closed the connection during the upload of {file}: {exc}"
                ) from None
            raw = response.read()
        except OSError as exc:
            raise UsageError(f"cannot reach the llmos server at {self.url}: {exc}") from None
        finally:
            connection.close()
        if response.status >= 400:
            raise _answer_error(raw, response.status, response.reason)
        return json.loads(raw)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_rows(target: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV or JSONL (by the suffix), written whole or not at all."""
    import csv

    tmp = target.with_name(target.name + ".tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8", newline="") as f:
        if target.suffix.lower() == ".jsonl":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            columns = list(dict.fromkeys(k for row in rows for k in row))
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    tmp.replace(target)


def _job_id(job_id: int | str) -> str:
    from llmos.ops.jobs import parse_job_id

    return str(parse_job_id(job_id))  # `invalid job id` here, as locally, not a 404 or 422


def _spec_body(spec: Any) -> Any:
    """What `POST /v1/jobs` takes: a mapping or YAML text; a file is read on this machine."""
    from pathlib import Path

    from llmos.core.errors import SpecError
    from llmos.ops.jobs import parse_yaml
    from llmos.spec.schema import TaskSpec

    if isinstance(spec, TaskSpec):
        return spec.model_dump(mode="json")
    if isinstance(spec, dict) or (isinstance(spec, str) and "\n" in spec):
        return spec
    path = Path(spec)
    if not path.exists():
        raise NotFoundError(f"{path}: no such spec file")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping of keys to values")
    return data


def _read_events(response: Any) -> Iterator[Any]:
    """Server-sent events (`id:`, `event:`, `data:` lines, a blank line ending each; `:`
    comments are heartbeats) parsed into the job event models."""
    from pydantic import TypeAdapter

    from llmos.ops.jobs import JobEvent

    adapter: TypeAdapter[Any] = TypeAdapter(JobEvent)
    data: list[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield adapter.validate_json("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


_REMOTE: dict[type[LlmosError], type[ServerError]] = {}


def _remote_class(cls: type[LlmosError]) -> type[ServerError]:
    """`cls` and `ServerError` at once: a remote call fails with the class (and so the
    exit code) the same call raises locally, and still carries the HTTP `status`."""
    if cls not in _REMOTE:
        _REMOTE[cls] = type(cls.__name__, (cls, ServerError), {"__init__": ServerError.__init__})
    return _REMOTE[cls]


def _error_class(name: str, status: int) -> type[LlmosError]:
    """The `LlmosError` subclass a server named in an error answer."""
    import llmos.core.errors as core
    import llmos.serve.errors as serve

    for module in (core, serve):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, LlmosError) and found is not LlmosError:
            return found
    return {404: NotFoundError, 422: UsageError}.get(status, LlmosError)


def _error(exc: urllib.error.HTTPError) -> ServerError:
    return _answer_error(exc.read(), exc.code, str(exc.reason))


def _answer_error(raw: bytes, status: int, reason: str) -> ServerError:
    problems: list[str] = []
    try:
        error = json.loads(raw)["error"]
        message, kind = error["message"], str(error.get("llmos_error") or error.get("type", ""))
        problems = [str(p) for p in error.get("problems") or []]
    except (ValueError, KeyError, TypeError):
        message, kind = f"HTTP {status} {reason}", ""
    cls = _error_class(kind, status)
    if cls is LlmosError:
        return ServerError(message, status)
    found = _remote_class(cls)(message, status)
    if isinstance(found, SpecError):
        found.problems = problems  # every problem with its path, as a local check has them
    return found


@contextmanager
def _bundle(paths: list[str | os.PathLike[str]] | str | os.PathLike[str]) -> Iterator[Path]:
    """One file to upload: the file itself, or several zipped (each under its own name)."""
    import tempfile
    import zipfile

    items = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not items:
        raise UsageError("name at least one file to import")
    if len(items) == 1:
        yield items[0]
        return
    for item in items:
        if not item.is_file():
            raise NotFoundError(f"{item}: no such file")
    with tempfile.TemporaryDirectory(prefix="llmos-kb-") as folder:
        bundle = Path(folder) / "files.zip"
        with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
            for item in items:
                archive.write(item, item.name)
        yield bundle
