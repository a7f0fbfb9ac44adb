"""Errors the HTTP API maps to status codes of their own (the rest map by their class)."""

from __future__ import annotations

from llmos.core.errors import LlmosError, ModelError, UsageError


class ModelUnavailable(ModelError):
    """A deployment's model failed to load (HTTP 503); other deployments keep serving."""


class ServerBusy(LlmosError):
    """The request queue of a base model is full (HTTP 429 with Retry-After)."""

    exit_code = 9


class InputTooLarge(LlmosError):
    """More inputs or longer texts than the server accepts (HTTP 413)."""

    exit_code = 2


class RequestTimeout(LlmosError):
    """A request waited longer than the per-request timeout (HTTP 504)."""

    exit_code = 9


class Unauthenticated(LlmosError):
    """No usable bearer token: missing, malformed, unknown, expired or revoked (HTTP 401)."""

    exit_code = 10


class Forbidden(LlmosError):
    """A known caller whose role does not allow this route or deployment (HTTP 403)."""

    exit_code = 10


class RateLimited(LlmosError):
    """Over a per-token rate limit or daily quota (HTTP 429, Retry-After `retry_after`)."""

    exit_code = 9

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestBlocked(LlmosError):
    """A request the guard refuses, such as a prompt-injection attempt in block mode (HTTP 400)."""

    exit_code = 2


class BadRequest(UsageError):
    """A request OpenAI's API would refuse (HTTP 400): an unsupported parameter or value,
    more tokens than the model's context or the server allows. Names the field
    (`param`) and OpenAI's string `code`."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.param = param
        self.code = code
