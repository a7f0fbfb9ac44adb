"""`/v1/support`: the customer-service assistant: assistants, sessions and their messages
(one turn each), and the hand-off queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from llmos.api.access import op
from llmos.api.dependencies import context
from llmos.ops import support as ops
from llmos.ops.context import Context
from llmos.ops.support import AssistantInfo, HandoffInfo, SupportReply, SupportSessionInfo


class CreateAssistant(BaseModel):
    name: str = Field(description="The assistant's name")
    config: dict[str, Any] = Field(
        default_factory=dict, description="intents, collection, reranker, generator and thresholds"
    )


class OpenSession(BaseModel):
    assistant: str = Field(description="The assistant to talk to")


class Message(BaseModel):
    message: str = Field(description="The customer's message")


def router(allow: Any) -> APIRouter:
    api = APIRouter(prefix="/v1/support", tags=["support"], dependencies=[Depends(allow)])

    @api.post("/assistants", response_model=AssistantInfo, openapi_extra=op("support_create"))
    def create(body: CreateAssistant, ctx: Context = Depends(context)) -> AssistantInfo:
        return ops.support_create(ctx, body.name, body.config)

    @api.get("/assistants", response_model=list[AssistantInfo], openapi_extra=op("support_assistants"))
    def assistants(ctx: Context = Depends(context)) -> list[AssistantInfo]:
        return ops.support_assistants(ctx)

    @api.post(
        "/sessions", response_model=SupportSessionInfo, openapi_extra=op("support_open", "body:assistant")
    )
    def open_(body: OpenSession, ctx: Context = Depends(context)) -> SupportSessionInfo:
        return ops.support_open(ctx, body.assistant)

    @api.get(
        "/sessions/{session}",
        response_model=SupportSessionInfo,
        openapi_extra=op("support_session", "session:session"),
    )
    def session(session: str, ctx: Context = Depends(context)) -> SupportSessionInfo:
        return ops.support_session(ctx, session)

    @api.post(
        "/sessions/{session}/messages",
        response_model=SupportReply,
        openapi_extra=op("support_ask", "session:session"),
    )
    def ask(session: str, body: Message, ctx: Context = Depends(context)) -> SupportReply:
        return ops.support_ask(ctx, session, body.message)

    @api.get("/handoffs", response_model=list[HandoffInfo], openapi_extra=op("support_handoffs"))
    def handoffs(assistant: str | None = None, ctx: Context = Depends(context)) -> list[HandoffInfo]:
        return ops.support_handoffs(ctx, assistant)

    return api
