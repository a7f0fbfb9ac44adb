"""Errors the HTTP API maps to status codes of their own (the rest map by their class)."""

from __future__ import annotations

from llmos.core.errors import LlmosError, ModelError


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
