"""How errors become HTTP answers: one status per `LlmosError` class, OpenAI's error shape.

Unknown resource 404, bad input 422, too large 413, queue full or over a quota 429 (with
Retry-After), a state conflict 409 (cancelling a finished job), model failing to load
503, timeout 504; anything else that escapes is a bug and answers 500.
"""

from __future__ import annotations

from typing import Any

from llmos.core.errors import DataError, JobError, LlmosError, NotFoundError, SpecError, UsageError
from llmos.serve.errors import (
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
    (RequestBlocked, 400),
    (NotFoundError, 404),
    (InputTooLarge, 413),
    (ServerBusy, 429),
    (ModelUnavailable, 503),
    (RequestTimeout, 504),
    (JobError, 409),
    (UsageError, 422),
    (DataError, 422),
    (SpecError, 422),
]


def status_of(exc: LlmosError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def error_body(message: str, kind: str, code: int, problems: list[str] | None = None) -> dict[str, Any]:
    """OpenAI's error shape, so its clients show the message; a spec's errors also come as
    the list `problems`, one line each with its path."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if problems:
        error["problems"] = problems
    return {"error": error}


def exception_body(exc: LlmosError, code: int) -> dict[str, Any]:
    problems = exc.problems if isinstance(exc, SpecError) else None
    return error_body(exc.message, type(exc).__name__, code, problems)


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
