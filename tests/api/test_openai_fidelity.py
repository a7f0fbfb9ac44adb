"""OpenAI fidelity, through the official `openai` client: errors in OpenAI's shape with
string codes (also for unknown routes, 405 and undecodable bodies), `x-request-id` on
every answer, `GET /v1/models/{id}`, text-part content, the developer role, a list of
prompts, `n` > 1, embeddings `dimensions`, and a 400 naming each unsupported field."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import init_admin
from llmos.security.policy import build_policy
from llmos.serve.runtime import ServeConfig

MESSAGES = [{"role": "user", "content": "what is my balance"}]


@pytest.fixture
def served(ws, tiny_lm_dir, tiny_model_dir):
    ws.deploy(str(tiny_lm_dir), "tiny")
    ws.deploy(str(tiny_model_dir), "emb")
    token, _ = init_admin(ws.store)
    config = ServeConfig(max_wait_ms=1, max_new_tokens=40)
    with ServerThread(ws.store, config, policy=build_policy(ws.store)) as url:
        yield url, token, openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)


def _error(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "param", "code"} <= set(body["error"])
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    return body["error"]


def test_errors_in_openai_shape_with_string_codes(served):
    url, token, oa = served
    stranger = openai.OpenAI(base_url=f"{url}/v1", api_key="llmos_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        stranger.models.list()
    assert _error(caught.value)["code"] == "invalid_api_key"
    assert caught.value.code == "invalid_api_key"  # what the client exposes
    with pytest.raises(openai.NotFoundError) as caught:
        oa.chat.completions.create(model="gpt-4", messages=MESSAGES)
    error = _error(caught.value)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    with pytest.raises(openai.NotFoundError) as caught:
        oa.models.retrieve("gpt-4")
    assert _error(caught.value)["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        oa.completions.create(model="tiny", prompt="hello " * 90, max_tokens=20)
    assert _error(caught.value)["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        oa.completions.create(model="tiny", prompt="hi", max_tokens=10**9)
    assert _error(caught.value)["param"] == "max_tokens"
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        oa.chat.completions.create(model="tiny", messages=MESSAGES, temperature=2.5)
    assert _error(caught.value)["param"] == "temperature"
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, status, code in [
        ("GET", "/v1/nowhere", 404, "not_found"),
        ("DELETE", "/v1/models", 405, "method_not_allowed"),
        ("PUT", "/v1/chat/completions", 405, "method_not_allowed"),
    ]:
        r = httpx.request(method, url + path, headers=auth)
        assert r.status_code == status and r.json()["error"]["code"] == code, r.text
        assert r.json()["error"]["type"] == "invalid_request_error" and r.headers["x-request-id"]
    r = httpx.post(f"{url}/v1/chat/completions", content=b"{not json", headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    for raw in (b"\xff\xfe", b"\xff"):
        headers = {**auth, "Content-Type": "application/json"}
        r = httpx.post(f"{url}/v1/chat/completions", content=raw, headers=headers)
        assert r.status_code in (400, 422) and r.json()["error"]["code"] == "invalid_json", r.text


def test_unsupported_fields_are_refused_by_name(served):
    _, _, oa = served
    refused = {
        "logprobs": {"logprobs": True},
        "top_logprobs": {"top_logprobs": 2},
        "response_format": {"response_format": {"type": "json_object"}},
        "tools": {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        "tool_choice": {"tool_choice": "required"},
        "presence_penalty": {"presence_penalty": 0.5},
    }
    for field, extra in refused.items():
        with pytest.raises(openai.BadRequestError) as caught:
            oa.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=2, **extra)
        error = _error(caught.value)
        assert error["param"] == field and error["message"].startswith(field), error
    with pytest.raises(openai.BadRequestError) as caught:
        oa.completions.create(model="tiny", prompt="hi", max_tokens=2, logprobs=2)
    assert _error(caught.value)["param"] == "logprobs"
    with pytest.raises(openai.BadRequestError) as caught:
        oa.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
        )
    assert _error(caught.value)["param"] == "messages[0].content[0].type"
    # what is accepted as the default is not refused
    answer = oa.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=2, logprobs=False, response_format={"type": "text"}
    )
    assert answer.choices[0].logprobs is None


def test_openai_request_forms(served):
    _, _, oa = served
    card = oa.models.retrieve("tiny")
    assert card.id == "tiny" and card.object == "model"
    plain = oa.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=5)
    parts = oa.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": [{"type": "text", "text": "what is my balance"}]}],
        max_tokens=5,
    )
    assert parts.choices[0].message.content == plain.choices[0].message.content
    system = [{"role": "system", "content": "be brief"}, *MESSAGES]
    developer = [{"role": "developer", "content": "be brief"}, *MESSAGES]
    as_system = oa.chat.completions.create(model="tiny", messages=system, max_tokens=5)
    as_developer = oa.chat.completions.create(model="tiny", messages=developer, max_tokens=5)
    assert as_developer.choices[0].message.content == as_system.choices[0].message.content
    # a list of prompts, n choices each: choices in prompt order
    one = oa.completions.create(model="tiny", prompt="hello how are", max_tokens=4)
    two = oa.completions.create(model="tiny", prompt="good bye", max_tokens=4)
    both = oa.completions.create(model="tiny", prompt=["hello how are", "good bye"], max_tokens=4, n=2)
    assert [c.index for c in both.choices] == [0, 1, 2, 3]
    assert [c.text for c in both.choices] == [one.choices[0].text] * 2 + [two.choices[0].text] * 2
    assert both.usage.completion_tokens == 2 * (one.usage.completion_tokens + two.usage.completion_tokens)
    sampled = oa.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=8, n=3, temperature=1.5, seed=1
    )
    assert len(sampled.choices) == 3 and len({c.message.content for c in sampled.choices}) > 1
    stream = oa.chat.completions.create(
        model="tiny", messages=MESSAGES, max_tokens=8, n=3, temperature=1.5, seed=1, stream=True
    )
    texts = ["", "", ""]
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts == [c.message.content for c in sampled.choices]
    # embeddings: `dimensions` keeps the first N, renormalised
    full = oa.embeddings.create(model="emb", input=["my card", "a refund"], encoding_format="float")
    short = oa.embeddings.create(model="emb", input=["my card", "a refund"], dimensions=8)
    for whole, cut in zip(full.data, short.data):
        assert len(cut.embedding) == 8
        assert math.isclose(sum(x * x for x in cut.embedding), 1.0, rel_tol=1e-5)
        norm = math.sqrt(sum(x * x for x in whole.embedding[:8]))
        assert all(math.isclose(a, b / norm, abs_tol=1e-5) for a, b in zip(cut.embedding, whole.embedding))
    with pytest.raises(openai.BadRequestError) as caught:
        oa.embeddings.create(model="emb", input="hi", dimensions=100_000)
    assert _error(caught.value)["param"] == "dimensions"


def test_every_answer_has_a_request_id(served):
    url, token, oa = served
    auth = {"Authorization": f"Bearer {token}"}
    answers = [
        httpx.get(f"{url}/healthz"),
        httpx.get(f"{url}/metrics", headers=auth),
        httpx.get(f"{url}/openapi.json"),
        httpx.get(f"{url}/v1/models", headers=auth),
        httpx.get(f"{url}/v1/deployments", headers=auth),
        httpx.get(f"{url}/v1/deployments"),  # 401
        httpx.get(f"{url}/v1/nowhere"),
        httpx.post(
            f"{url}/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 1}, headers=auth
        ),
    ]
    for r in answers:
        assert r.headers.get("x-request-id"), (r.request.url, r.status_code)
    completion = answers[-1]
    assert completion.headers["x-request-id"] == completion.json()["id"]  # the id feedback names
    raw = oa.chat.completions.with_raw_response.create(model="tiny", messages=MESSAGES, max_tokens=2)
    assert raw.headers["x-request-id"] == raw.parse().id
    assert answers[1].headers["content-type"].startswith("text/plain")
