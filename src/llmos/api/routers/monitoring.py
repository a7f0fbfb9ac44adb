"""`/v1/deployments/{name}/monitor` (the drift report, or its chart as PNG) and `/v1/alerts`
(`metrics:read`). No webhook over HTTP: see `llmos.ops.monitoring`."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.core.errors import NotFoundError
from llmos.ops import monitoring as ops
from llmos.ops.context import Context
from llmos.ops.monitoring import AlertInfo, MonitorReport


class MonitorQuery:
    """The report's options, as query parameters (shared by the JSON and the PNG route)."""

    def __init__(
        self,
        window: int = Query(200, ge=10, description="Served requests per window"),
        last: int = Query(10, ge=1, description="Report the last N windows"),
        drift_p: float = Query(0.01, description="Alert when the MMD p-value is below"),
        psi: float = Query(0.25, description="Alert when the predicted-label PSI is above"),
        confidence_p: float = Query(0.01, description="Alert when the confidence KS p-value is below"),
        min_accuracy: float = Query(0.7, description="Alert when feedback accuracy is below (20+ labels)"),
        embedder: str = Query("minilm", description="Sentence encoder for input drift (zoo alias)"),
        labels_p: float = Query(0.01, description="The label shift must also have a chi-square p below"),
        min_feedback: int = Query(
            20, ge=1, description="Feedback labels a window needs for the accuracy alert"
        ),
        fire: bool = Query(False, description="Record the alerts new full windows raise (each once)"),
    ) -> None:
        self.options: dict[str, Any] = {
            "window": window, "last": last, "embedder": embedder, "fire": fire,
            "thresholds": {"drift_p": drift_p, "psi": psi, "confidence_p": confidence_p,
                           "min_accuracy": min_accuracy, "labels_p": labels_p, "min_feedback": min_feedback},
        }  # fmt: skip


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["monitoring"], dependencies=[Depends(allow)])

    @api.get("/deployments/{name}/monitor", response_model=MonitorReport, openapi_extra=op("monitor"))
    def monitor(
        name: str,
        query: MonitorQuery = Depends(),
        chart: bool = Query(False, description="Also send the chart, as base64 PNG in `chart`"),
        ctx: Context = Depends(context),
    ) -> MonitorReport:
        if not chart:
            return ops.monitor(ctx, name, **query.options)
        with tempfile.TemporaryDirectory(prefix="llmos-chart-") as folder:
            target = Path(folder) / "monitor.png"
            report = ops.monitor(ctx, name, png=target, **query.options)
            if report.png is not None:
                report.chart = base64.b64encode(target.read_bytes()).decode()
                report.png = None
            return report

    @api.get(
        "/deployments/{name}/monitor/chart",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}, "description": "The report's chart"}},
        openapi_extra=op("monitor"),
    )
    def chart(name: str, query: MonitorQuery = Depends(), ctx: Context = Depends(context)) -> Response:
        with tempfile.TemporaryDirectory(prefix="llmos-chart-") as folder:
            target = Path(folder) / "monitor.png"
            report = ops.monitor(ctx, name, png=target, **query.options)
            if report.png is None:
                raise NotFoundError(f"deployment {name!r} has no chart yet: {report.note}")
            return Response(target.read_bytes(), media_type="image/png")

    @api.get("/alerts", response_model=list[AlertInfo], openapi_extra=op("alerts"))
    def alerts(
        deployment: str | None = Query(None, description="Only this deployment's"),
        limit: int | None = Query(None, ge=1, description="The newest N"),
        ctx: Context = Depends(context),
    ) -> list[AlertInfo]:
        return ops.alerts(ctx, deployment, limit)

    return api
