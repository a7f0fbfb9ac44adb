"""Monitoring: a deployment's drift report (`llmos.adapt.monitor`) as a result model,
with an optional PNG chart, and the alerts recorded so far (`metrics:read`).

A webhook is a URL the monitoring process POSTs to: it is offered where the workspace is
(`llmos monitor --webhook`, `Workspace.monitor`), not over HTTP, where it would let any
caller with read access make the server send requests to addresses of its choice.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from llmos.core.progress import Progress
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


class ThresholdsInfo(Result):
    drift_p: float = 0.01
    psi: float = 0.25
    labels_p: float = 0.01
    confidence_p: float = 0.01
    min_accuracy: float = 0.7
    min_feedback: int = 20


class WindowInfo(Result):
    index: int
    first_id: int = Field(description="The first served request of the window")
    last_id: int
    size: int
    full: bool
    start: Timestamp | None = None
    end: Timestamp | None = None
    mmd: float | None = Field(None, description="MMD² of the inputs against the training sample")
    drift_p: float | None = None
    auc: float | None = Field(None, description="Domain classifier AUC (0.5: indistinguishable)")
    psi: float | None = None
    labels_p: float | None = None
    confidence: float | None = None
    confidence_p: float | None = None
    feedback: int = 0
    accuracy: float | None = None
    top_labels: dict[str, int] = Field(default_factory=dict)
    alerts: list[str] = Field(default_factory=list)

    @field_validator("mmd", "drift_p", "auc", "psi", "labels_p", "confidence", "confidence_p", "accuracy",
                     mode="before")  # fmt: skip
    @classmethod
    def _no_nan(cls, value: Any) -> Any:
        return _finite(value)


class AlertInfo(Result):
    alert_id: int
    deployment: str
    model: str
    check: str = Field(description="drift, labels, confidence or accuracy")
    window_end: int
    value: float | None = None
    threshold: float
    message: str
    created_at: Timestamp | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _no_nan(cls, value: Any) -> Any:
        return _finite(value)


class MonitorReport(Result):
    deployment: str
    model: str | None = None
    reference: str | None = Field(None, description="The training dataset the traffic is compared with")
    reference_rows: int = 0
    heldout_rows: int = 0
    window: int
    thresholds: ThresholdsInfo
    windows: list[WindowInfo] = Field(default_factory=list)
    alerts: list[AlertInfo] = Field(default_factory=list, description="Alerts this call fired (new ones)")
    note: str = ""
    drifted: bool = Field(description="Did the latest full window drift (inputs, or the label mix)?")
    png: str | None = Field(None, description="Where the chart was written")
    chart: str | None = Field(None, description="The chart as base64 PNG (over HTTP, when asked)")

    @property
    def latest(self) -> WindowInfo | None:
        full = [w for w in self.windows if w.full]
        return full[-1] if full else None


@operation("metrics:read")
def monitor(
    ctx: Context,
    deployment: str,
    *,
    window: int = 200,
    last: int = 10,
    thresholds: Any = None,
    embedder: str = "minilm",
    reference_size: int = 500,
    permutations: int = 200,
    seed: int = 0,
    fire: bool = False,
    webhook: str | None = None,
    png: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> MonitorReport:
    """Drift, stability and feedback accuracy of a deployment's recent traffic, by window
    of `window` served requests; with `fire`, new threshold crossings raise alerts; `png`
    writes the chart there. `thresholds`: a `Thresholds`, or a dict of its fields."""
    from llmos.adapt.monitor import Thresholds, drift_report
    from llmos.core.errors import UsageError
    from llmos.core.util import atomic_path

    if last < 1:
        raise UsageError(f"last must be at least 1, not {last}")
    if isinstance(thresholds, dict):
        try:
            thresholds = Thresholds(**thresholds)
        except TypeError as exc:
            raise UsageError(f"monitor thresholds: {exc}") from None
    report = drift_report(
        ctx.store, deployment, window=window, last=last, thresholds=thresholds, embedder=embedder,
        reference_size=reference_size, permutations=permutations, seed=seed, fire=fire,
        webhook=webhook, progress=progress,
    )  # fmt: skip
    written = None
    if png is not None and report.windows:
        from llmos.adapt.monitor_chart import plot_report

        with atomic_path(Path(png)) as tmp:
            plot_report(report, tmp)
        written = str(png)
    data = report.to_dict()
    data["alerts"] = [AlertInfo(**a) for a in data["alerts"]]
    return MonitorReport(**data, png=written)


@operation("metrics:read")
def alerts(ctx: Context, deployment: str | None = None, limit: int | None = None) -> list[AlertInfo]:
    """Monitoring alerts recorded so far (of one deployment), oldest first; the newest `limit`."""
    from llmos.core.errors import UsageError
    from llmos.store.alerts import list_alerts
    from llmos.store.deployments import get_deployment

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    if deployment is not None:
        get_deployment(ctx.store, deployment)
    return [
        AlertInfo(
            alert_id=a.id,
            deployment=a.deployment,
            model=a.model,
            check=a.check,
            window_end=a.window_end,
            value=a.value,
            threshold=a.threshold,
            message=a.message,
            created_at=a.created_at,
        )
        for a in list_alerts(ctx.store, deployment, limit)
    ]
