"""How errors become HTTP answers: one status per `LlmosError` class, OpenAI's error shape.

Unknown resource 404, bad input 422 (a request OpenAI's API refuses, such as an
unsupported parameter or too many tokens, 400), too large 413, queue full or over a
quota 429 (with Retry-After), a state conflict 409 (cancelling a finished job), model
failing to load or the server stopping 503, timeout 504; anything else that escapes is
a bug and answers 500.

Every error answer is `{"error": {"message", "type", "param", "code", "llmos_error"}}`:
OpenAI's shape (its clients show the message and expose `code`), with OpenAI's
category as `type`, a string `code` (`invalid_api_key`, `model_not_found`,
`context_length_exceeded`, ...), the request field at fault as `param` where known, and
the llmos error class as `llmos_error` (what `llmos.Client` re-raises).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from llmos.core.errors import (
    Conflict,
    DataError,
    JobError,
    LlmosError,
    ModelError,
    NotFoundError,
    QuotaExceeded,
    ServiceUnavailable,
    SpecError,
    UsageError,
)
from llmos.serve.errors import (
    BadRequest,
    Forbidden,
    InputTooLarge,
    ModelUnavailable,
    RateLimited,
    RequestBlocked,
    RequestTimeout,
    ServerBusy,
    Unauthenticated,
)

STATUS: list[tuple[type[LlmosError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (RateLimited, 429),
    (QuotaExceeded, 429),
    (Conflict, 409),
    (RequestBlocked, 400),
    (BadRequest, 400),
    (ServiceUnavailable, 503),
    (NotFoundError, 404),
    (InputTooLarge, 413),
    (ServerBusy, 429),
    (ModelUnavailable, 503),
    (ModelError, 422),  # a model named in the request that cannot be used (deploy ".")
    (RequestTimeout, 504),
    (JobError, 409),
    (UsageError, 422),
    (DataError, 422),
    (SpecError, 422),
]


def status_of(exc: LlmosError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
CODES = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    422: "invalid_value",
    429: "rate_limit_exceeded",
    500: "internal_error",
    503: "service_unavailable",
    504: "timeout",
}


class ErrorDetail(BaseModel):
    message: str = Field(description="One line naming the field, file or id at fault")
    type: str = Field(description="OpenAI's category: invalid_request_error, authentication_error, ...")
    param: str | None = Field(None, description="The request field at fault, where known")
    code: str | None = Field(None, description="A string code: invalid_api_key, model_not_found, ...")
    llmos_error: str | None = Field(None, description="The llmos error class")
    problems: list[str] | None = Field(None, description="A spec's problems, one line each with its path")


class ErrorBody(BaseModel):
    """Every error answer (OpenAI's shape)."""

    error: ErrorDetail


def error_type(status: int) -> str:
    return TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(
    message: str,
    kind: str,
    status: int,
    param: str | None = None,
    code: str | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """OpenAI's error shape, so its clients show the message (`kind`: the llmos error class);
    a spec's errors also come as the list `problems`, one line each with its path."""
    detail: dict[str, Any] = {
        "message": message,
        "type": error_type(status),
        "param": param,
        "code": code or CODES.get(status, "error"),
        "llmos_error": kind,
    }
    if problems:
        detail["problems"] = problems
    return {"error": detail}


def error_of(exc: LlmosError) -> dict[str, Any]:
    problems = exc.problems if isinstance(exc, SpecError) else None
    return error_body(exc.message, type(exc).__name__, status_of(exc), exc.param, exc.code, problems)


def validation_param(errors: Any) -> str | None:
    loc = [str(p) for p in errors[0].get("loc", ()) if p not in ("body", "query", "path", "header")]
    return ".".join(loc) or None


def validation_message(errors: Any) -> str:
    """One line naming the field of the first problem (and how many more there are)."""
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        text = f"the request body is not valid JSON ({reason})"
    else:
        text = f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid')}"
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
