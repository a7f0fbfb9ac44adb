"""`/v1/schedules`: periodic jobs the kernel submits (list, add, show, pause, resume, remove)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import schedules as ops
from llmos.ops.context import Context
from llmos.ops.schedules import ScheduleInfo


class ScheduleRequest(BaseModel):
    name: str = Field(description="The schedule's name (unique)")
    job: list[str] | str = Field(
        description="The job's words: adapt DEPLOYMENT [--on-drift ...], train SPEC, "
        "eval MODEL --data D or predict MODEL --data D"
    )
    every: str | int | None = Field(None, description="10s, 5m, 1h, 1d or seconds (or give cron)")
    cron: str | None = Field(None, description="Five cron fields, UTC: '*/5 * * * *' (or give every)")
    paused: bool = Field(False, description="Add it paused")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/schedules", tags=["schedules"], dependencies=[Depends(allow)])

    @api.get("", response_model=list[ScheduleInfo], openapi_extra=op("schedules"))
    def list_(ctx: Context = Depends(context)) -> list[ScheduleInfo]:
        return ops.schedules(ctx)

    @api.post("", status_code=201, response_model=ScheduleInfo, openapi_extra=op("add_schedule"))
    def add(body: ScheduleRequest, ctx: Context = Depends(context)) -> ScheduleInfo:
        return ops.add_schedule(
            ctx, body.name, body.job, every=body.every, cron=body.cron, paused=body.paused
        )

    @api.get("/{name}", response_model=ScheduleInfo, openapi_extra=op("schedule"))
    def show(name: str, ctx: Context = Depends(context)) -> ScheduleInfo:
        return ops.schedule(ctx, name)

    @api.delete("/{name}", response_model=ScheduleInfo, openapi_extra=op("remove_schedule"))
    def remove(name: str, ctx: Context = Depends(context)) -> ScheduleInfo:
        return ops.remove_schedule(ctx, name)

    @api.post("/{name}/pause", response_model=ScheduleInfo, openapi_extra=op("pause_schedule"))
    def pause(name: str, ctx: Context = Depends(context)) -> ScheduleInfo:
        return ops.pause_schedule(ctx, name)

    @api.post("/{name}/resume", response_model=ScheduleInfo, openapi_extra=op("resume_schedule"))
    def resume(name: str, ctx: Context = Depends(context)) -> ScheduleInfo:
        return ops.resume_schedule(ctx, name)

    return api
