"""`/v1/watches`: opinion watches (create, list, status), their ingest route (a batch is
acknowledged only once stored; rows with a client id already stored are skipped), their
series, texts, alerts (and acknowledging one) and a series' chart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.apps.watch import operations as ops
from llmos.apps.watch.operations import (
    IngestReceipt,
    WatchAlertInfo,
    WatchInfo,
    WatchPlot,
    WatchSeries,
    WatchStatus,
    WatchTextInfo,
)
from llmos.ops.context import Context
from llmos.ops.jobs import JobInfo


class WatchRequest(BaseModel):
    name: str = Field(description="The watch's name (unique in the project)")
    classifier: str = Field(description="A classifier deployment: each text's sentiment")
    entities: str | None = Field(None, description="An NER deployment: each text's entities")
    topics: list[str] | str | dict[str, list[str]] | None = Field(
        None, description="Keyword rules: ['rates', 'banks:bank|lender'] (or give topic_column)"
    )
    topic_column: str | None = Field(None, description="The rows' column holding their topics ('a|b')")
    bucket: str = Field("hour", description="minute, hour or day")
    negative: str | None = Field(None, description="The classifier's negative label (default: found)")
    text_column: str = "text"
    time_column: str = "timestamp"
    id_column: str = Field(
        "id", description="The rows' optional client id: a retried row is not counted twice"
    )
    detector: dict[str, Any] | None = Field(
        None, description="Detector settings (threshold, min_volume, ...)"
    )


class BackfillRequest(BaseModel):
    data: str = Field(description="A dataset version (NAME[@V]) with the watch's text and time columns")
    cpus: int = Field(1, description="CPUs the job holds")
    backend: str = Field("local", description="local, or ray: the texts are scored on Ray Data")
    workers: int = Field(2, description="Ray Data actors (backend ray)")


class IngestRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(description="Rows with a text, a timestamp and optionally an id")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/watches", tags=["watches"], dependencies=[Depends(allow)])

    @api.get("", response_model=list[WatchInfo], openapi_extra=op("watches"))
    def list_(ctx: Context = Depends(context)) -> list[WatchInfo]:
        return ops.watches(ctx)

    @api.post("", status_code=201, response_model=WatchInfo, openapi_extra=op("create_watch"))
    def create(body: WatchRequest, ctx: Context = Depends(context)) -> WatchInfo:
        values = body.model_dump()
        return ops.create_watch(ctx, values.pop("name"), values.pop("classifier"), **values)

    @api.get("/{name}", response_model=WatchStatus, openapi_extra=op("watch_status"))
    def status(name: str, ctx: Context = Depends(context)) -> WatchStatus:
        return ops.watch_status(ctx, name)

    @api.post("/{name}/texts", response_model=IngestReceipt, openapi_extra=op("ingest_watch"))
    def ingest(name: str, body: IngestRequest, ctx: Context = Depends(context)) -> IngestReceipt:
        """Answered only once the batch is committed: a retry after a lost answer is safe
        when the rows carry ids."""
        return ops.ingest_watch(ctx, name, body.rows)

    @api.post("/{name}/backfill", status_code=201, response_model=JobInfo, openapi_extra=op("backfill_watch"))
    def backfill(name: str, body: BackfillRequest, ctx: Context = Depends(context)) -> JobInfo:
        return ops.backfill_watch(
            ctx, name, body.data, cpus=body.cpus, backend=body.backend, workers=body.workers
        )

    @api.get("/{name}/texts", response_model=list[WatchTextInfo], openapi_extra=op("watch_texts"))
    def texts(
        name: str,
        bucket: str | None = None,
        series: str = "all",
        limit: int = 20,
        ctx: Context = Depends(context),
    ) -> list[WatchTextInfo]:
        return ops.watch_texts(ctx, name, bucket, series, limit)

    @api.get("/{name}/series", response_model=WatchSeries, openapi_extra=op("watch_series"))
    def series(name: str, series: str = "all", ctx: Context = Depends(context)) -> WatchSeries:
        return ops.watch_series(ctx, name, series)

    @api.get("/{name}/alerts", response_model=list[WatchAlertInfo], openapi_extra=op("watch_alerts"))
    def alerts(name: str, open_only: bool = False, ctx: Context = Depends(context)) -> list[WatchAlertInfo]:
        return ops.watch_alerts(ctx, name, open_only)

    @api.post(
        "/{name}/alerts/{alert_id}/ack", response_model=WatchAlertInfo, openapi_extra=op("ack_watch_alert")
    )
    def ack(name: str, alert_id: int, ctx: Context = Depends(context)) -> WatchAlertInfo:
        return ops.ack_watch_alert(ctx, name, alert_id)

    @api.get("/{name}/plot", response_model=WatchPlot, openapi_extra=op("plot_watch"))
    def plot(name: str, series: str = "all", ctx: Context = Depends(context)) -> WatchPlot:
        return ops.plot_watch(ctx, name, series)

    return api
