"""`llmos.Client`: the Python client of a running `llmos serve`.

Standard library only (urllib), so a client machine needs nothing but llmos. Errors
the server reports come back as the matching `LlmosError` with the server's one-line
message; `status` holds the HTTP code. The OpenAI-compatible routes also work with the
official `openai` package (point its `base_url` at `URL/v1`).

`token` (default: the `LLMOS_TOKEN` environment variable) is sent as a bearer token; a
server answers 401 without a usable one and 403 when its role does not allow the call.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from llmos.core.errors import LlmosError, NotFoundError, UsageError
from llmos.ops.deployments import DeploymentInfo


def _q(part: str) -> str:
    """A path segment (names may hold characters a URL path cannot)."""
    return urllib.parse.quote(str(part), safe="@")


class ServerError(LlmosError):
    """An error answer from the server; `status` is its HTTP code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("LLMOS_TOKEN")
        self.timeout = timeout

    # --- routes ----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")

    def deployments(self) -> list[DeploymentInfo]:
        return [DeploymentInfo(**row) for row in self._call("GET", "/v1/deployments")]

    def deployment(self, name: str) -> DeploymentInfo:
        return DeploymentInfo(**self._call("GET", f"/v1/deployments/{_q(name)}"))

    def deploy(
        self, model: str, name: str, *, optimize: str | None = None, pin: bool = False
    ) -> DeploymentInfo:
        body = {"model": model, "name": name, "optimize": optimize, "pin": pin}
        return DeploymentInfo(**self._call("POST", "/v1/deployments", body))

    def undeploy(self, name: str) -> DeploymentInfo:
        return DeploymentInfo(**self._call("DELETE", f"/v1/deployments/{_q(name)}"))

    def predict(
        self, deployment: str, inputs: str | list[str] | list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Labels and probabilities (or a model's own outputs), one dict per input; rows of
        multi-input models are dicts of column values."""
        texts = [inputs] if isinstance(inputs, str) else inputs
        answer = self._call("POST", f"/v1/deployments/{deployment}/predict", {"inputs": texts})
        return answer["predictions"]

    def feedback(
        self,
        deployment: str,
        request_id: str,
        *,
        label: str | None = None,
        rating: int | None = None,
        answer: str | None = None,
        index: int | None = None,
        new_label: bool = False,
    ) -> dict[str, Any]:
        """Tell the server the correct label, a rating (1-5) or a corrected answer for a
        served prediction (`request_id` and, for multi-input requests, `index`). Returns
        once the feedback is durably stored: its `feedback_id` and the `model` that answered."""
        body = {"request_id": request_id, "index": index, "label": label, "rating": rating}
        body |= {"answer": answer, "new_label": new_label}
        return self._call("POST", f"/v1/deployments/{deployment}/feedback", body)

    def embed(self, deployment: str, inputs: str | list[str]) -> list[list[float]]:
        body = {"model": deployment, "input": inputs, "encoding_format": "float"}
        answer = self._call("POST", "/v1/embeddings", body)
        return [row["embedding"] for row in answer["data"]]

    def chat(self, deployment: str, messages: list[dict[str, str]], **sampling: Any) -> str:
        """The assistant's answer to OpenAI-format `messages` (sampling: max_tokens, temperature...)."""
        body = {"model": deployment, "messages": messages, **sampling}
        answer = self._call("POST", "/v1/chat/completions", body)
        return answer["choices"][0]["message"]["content"]

    def chat_stream(self, deployment: str, messages: list[dict[str, str]], **sampling: Any) -> Iterator[str]:
        """The answer's text as it is generated (server-sent events)."""
        body = {"model": deployment, "messages": messages, "stream": True, **sampling}
        with self._open("POST", "/v1/chat/completions", body) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    raise ServerError(event["error"]["message"], 500)
                text = event["choices"][0]["delta"].get("content") if event["choices"] else None
                if text:
                    yield text

    def complete(self, deployment: str, prompt: str, **sampling: Any) -> str:
        answer = self._call("POST", "/v1/completions", {"model": deployment, "prompt": prompt, **sampling})
        return answer["choices"][0]["text"]

    # --- transport -------------------------------------------------------------------

    def _open(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise _error(exc) from None
        except urllib.error.URLError as exc:
            raise UsageError(f"cannot reach the llmos server at {self.url}: {exc.reason}") from None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        with self._open(method, path, body) as response:
            return json.loads(response.read())


_REMOTE: dict[type[LlmosError], type[ServerError]] = {}


def _remote_class(cls: type[LlmosError]) -> type[ServerError]:
    """`cls` and `ServerError` at once: a remote call fails with the class (and so the
    exit code) the same call raises locally, and still carries the HTTP `status`."""
    if cls not in _REMOTE:
        _REMOTE[cls] = type(cls.__name__, (cls, ServerError), {"__init__": ServerError.__init__})
    return _REMOTE[cls]


def _error_class(name: str, status: int) -> type[LlmosError]:
    """The `LlmosError` subclass a server named in an error answer."""
    import llmos.core.errors as core
    import llmos.serve.errors as serve

    for module in (core, serve):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, LlmosError) and found is not LlmosError:
            return found
    return {404: NotFoundError, 422: UsageError}.get(status, LlmosError)


def _error(exc: urllib.error.HTTPError) -> ServerError:
    try:
        error = json.loads(exc.read())["error"]
        message, kind = error["message"], str(error.get("llmos_error") or error.get("type", ""))
    except (ValueError, KeyError, TypeError):
        message, kind = f"HTTP {exc.code} {exc.reason}", ""
    cls = _error_class(kind, exc.code)
    if cls is LlmosError:
        return ServerError(message, exc.code)
    return _remote_class(cls)(message, exc.code)
