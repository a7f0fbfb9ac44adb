"""`/v1/keys`: encryption at rest (admins only, `keys:admin`): the status, and a rotation
to a fresh random master key written on the server (no key material travels). Turning
encryption on is local only (`llmos keys enable`; see `llmos.ops.keys`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import keys as ops
from llmos.ops.context import Context
from llmos.ops.keys import EncryptionStatus, KeyRotation


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(allow)])

    @api.get("", response_model=EncryptionStatus, openapi_extra=op("encryption_status"))
    def status(ctx: Context = Depends(context)) -> EncryptionStatus:
        return ops.encryption_status(ctx)

    @api.post("/rotate", response_model=KeyRotation, openapi_extra=op("rotate_key"))
    def rotate(ctx: Context = Depends(context)) -> KeyRotation:
        return ops.rotate_key(ctx)

    return api
