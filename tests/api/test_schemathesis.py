"""Schemathesis over the whole OpenAPI document: every operation, a few generated requests
each (fixed seed), as an admin of a workspace with a generation and an embedding
deployment (tiny models). No request may get a 5xx, and every answer must match the
document: a declared status, the declared content type, the declared schema (error
answers included, which `create_app` declares for every route from its declaration)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = {"positive": 12, "negative": 5}  # per operation
SAMPLING = {"max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_lm_dir, tiny_model_dir):
    from llmos import Workspace
    from llmos.api.app import create_app
    from llmos.security.identities import init_admin
    from llmos.security.policy import TokenPolicy
    from llmos.security.watch import FailureLimiter
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    ws = Workspace(tmp_path_factory.mktemp("schemathesis") / "ws")
    ws.init()
    ws.deploy(str(tiny_lm_dir), "tiny")
    ws.deploy(str(tiny_model_dir), "emb")
    token, _ = init_admin(ws.store)
    runtime = ServeRuntime(ws.store, ServeConfig(max_wait_ms=1, timeout_s=10, max_new_tokens=16))
    # build_policy's token policy, with a limiter of failed authentications that never
    # trips: negative cases break the Authorization header too, and the default limiter
    # (tests/security/test_defence.py) would answer every request after the 20th such
    # failure with a delayed 429, before any route saw it
    policy = TokenPolicy(ws.store, failures=FailureLimiter(limit=10**9))
    app = create_app(runtime, policy)
    yield app, token
    runtime.close()


def test_every_operation_conforms(served):
    """Each operation, in both of schemathesis's modes: valid requests (positive) and
    requests that break the document (negative, which must be refused with a 4xx of the
    document, never a 5xx)."""
    from schemathesis.generation import GenerationMode

    app, token = served
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    admin = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    calls = iter(range(10**9))
    seen: list[str] = []

    def aim(case: Any) -> None:
        """Two valid requests in three name a deployment that exists (random names are
        all 404s): the generation, embedding and predict paths run for real."""
        name = ("tiny", "emb", None)[next(calls) % 3]
        if name is None or case.method == "DELETE":
            return
        if isinstance(case.body, dict) and "model" in case.body and "/deployments" not in case.path:
            case.body["model"] = name
        for key in ("name", "model"):
            if key in (case.path_parameters or {}):
                case.path_parameters[key] = name
        if name == "tiny" and case.path in ("/v1/chat/completions", "/v1/completions"):
            # a valid prompt, with the generated sampling parameters: generation runs
            sampling = {k: v for k, v in case.body.items() if k in SAMPLING}
            prompt = {"messages": [{"role": "user", "content": "hi"}]}
            if case.path == "/v1/completions":
                prompt = {"prompt": "hello how are"}
            case.body = {"model": "tiny", **prompt, **sampling}

    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]

    def exercise(operation: Any, mode: GenerationMode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode))
        @fixed_seed(20261201)
        @settings(
            max_examples=EXAMPLES[mode.value],
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            if mode == GenerationMode.POSITIVE:
                aim(case)
            response = case.call_and_validate(headers=admin, checks=CHECKS)
            seen.append(f"{operation.label} {mode.value} {response.status_code}")

        try:
            run()
        except Unsatisfiable:  # nothing to break in a request without parameters or body
            assert mode == GenerationMode.NEGATIVE, operation.label
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # schemathesis's FailureGroup is a BaseExceptionGroup
            failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            exercise(operation, mode)
    print("\n".join(f"{n:3d} {k}" for k, n in sorted(Counter(seen).items())))
    assert not failures, "\n\n".join(failures)
