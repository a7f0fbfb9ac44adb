"""`/v1/audit`: the tamper-evident audit log (admins only, `audit:read`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import audit as ops
from llmos.ops.audit import AuditEventInfo, AuditVerdict
from llmos.ops.context import Context


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/audit", tags=["audit"], dependencies=[Depends(allow)])

    @api.get("", response_model=list[AuditEventInfo], openapi_extra=op("audit_events"))
    def events(
        since: datetime | None = Query(
            None, description="Only events at or after this ISO date/time (UTC unless it says)"
        ),
        limit: int | None = Query(None, ge=1, description="The newest N of them"),
        project: str | None = Query(None, description="Only this project's events (default: all)"),
        ctx: Context = Depends(context),
    ) -> list[AuditEventInfo]:
        return ops.audit_events(ctx, since, limit, project)

    @api.get("/verify", response_model=AuditVerdict, openapi_extra=op("verify_audit"))
    def verify(ctx: Context = Depends(context)) -> AuditVerdict:
        """200 with `ok: false` and the first bad entry when the chain is broken."""
        return ops.verify_audit(ctx)

    return api
