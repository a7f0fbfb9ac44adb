"""`/v1/projects`: the projects of the workspace, their members and quotas (F17).

Every other route acts in the project its `LLMOS-Project` header names (`default`
without one): see the README's "Projects" for why a header rather than a path prefix.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import projects as ops
from llmos.ops.context import Context
from llmos.ops.projects import ProjectInfo


class ProjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="lower-case letters, digits, '_' and '-'")
    description: str = ""


class MemberRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field("developer", description="developer or viewer")


class QuotaRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_concurrent_jobs: int | None = None
    cpu_minutes_per_day: float | None = None
    requests_per_day: int | None = None
    max_stored_bytes: int | None = None
    gpu_hours_per_day: float | None = None


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["projects"], dependencies=[Depends(allow)])

    @api.get("/projects", response_model=list[ProjectInfo], openapi_extra=op("projects"))
    def projects(ctx: Context = Depends(context)) -> list[ProjectInfo]:
        return ops.projects(ctx)

    @api.post("/projects", response_model=ProjectInfo, openapi_extra=op("project_create"))
    def project_create(body: ProjectRequest, ctx: Context = Depends(context)) -> ProjectInfo:
        return ops.project_create(ctx, body.name, body.description)

    @api.get("/projects/{name}", response_model=ProjectInfo, openapi_extra=op("project_show"))
    def project_show(name: str, ctx: Context = Depends(context)) -> ProjectInfo:
        return ops.project_show(ctx, name)

    @api.delete("/projects/{name}", response_model=ProjectInfo, openapi_extra=op("project_delete"))
    def project_delete(name: str, ctx: Context = Depends(context)) -> ProjectInfo:
        return ops.project_delete(ctx, name)

    @api.put(
        "/projects/{name}/members/{user}", response_model=ProjectInfo, openapi_extra=op("project_member_add")
    )
    def project_member_add(
        name: str, user: str, body: MemberRequest | None = None, ctx: Context = Depends(context)
    ) -> ProjectInfo:
        return ops.project_member_add(ctx, name, user, (body or MemberRequest()).role)

    @api.delete(
        "/projects/{name}/members/{user}",
        response_model=ProjectInfo,
        openapi_extra=op("project_member_remove"),
    )
    def project_member_remove(name: str, user: str, ctx: Context = Depends(context)) -> ProjectInfo:
        return ops.project_member_remove(ctx, name, user)

    @api.patch("/projects/{name}/quotas", response_model=ProjectInfo, openapi_extra=op("project_quota"))
    def project_quota(name: str, body: QuotaRequest, ctx: Context = Depends(context)) -> ProjectInfo:
        return ops.project_quota(ctx, name, **body.model_dump())

    return api
