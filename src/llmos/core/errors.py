"""User-facing errors.

Every error a user can cause is an `LlmosError` with a one-line message that names the
file, column, field or id at fault and says what to do. The CLI prints the message and
exits with `exit_code`; `--debug` shows the traceback.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none: what
    a one-line error quotes of a library's failure."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class LlmosError(Exception):
    """Base class of every error llmos reports to users."""

    exit_code = 1
    # for HTTP answers (OpenAI's error shape): the request field at fault and a string
    # code such as "context_length_exceeded"; set on an instance where they are known
    param: str | None = None
    code: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(LlmosError):
    """Bad arguments: a wrong option value, a malformed reference."""

    exit_code = 2


class NotFoundError(LlmosError):
    """A dataset, model, file or alias that does not exist."""

    exit_code = 3


class DataError(LlmosError):
    """A data file that cannot be read or does not fit what was asked of it."""

    exit_code = 4


class SpecError(LlmosError):
    """A task spec that does not validate; `problems` holds one line per error."""

    exit_code = 5

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class ServiceUnavailable(LlmosError):
    """Something that serves requests is stopping or stopped working (HTTP 503): a
    generation engine during a server's shutdown."""

    exit_code = 9


class ModelError(LlmosError):
    """A model that cannot be built, loaded or saved."""

    exit_code = 6


class TrainingError(LlmosError):
    """A training run that cannot go on (diverged loss, no data left after a split)."""

    exit_code = 7


class StoreError(LlmosError):
    """The workspace store is missing, locked or from a newer llmos."""

    exit_code = 8


class JobError(LlmosError):
    """A job operation that does not fit the job's state (cancelling a finished job),
    or a job that cannot be run as asked (more resources than the machine has)."""

    exit_code = 9


class QuotaExceeded(LlmosError):
    """A project's quota is used up (HTTP 429, Retry-After `retry_after`: when it resets).
    The message names the quota, the project and when it resets."""

    exit_code = 9

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(LlmosError):
    """A change the current state does not allow, such as deleting a project that still
    has deployments (HTTP 409; the message lists what is in the way)."""

    exit_code = 9
