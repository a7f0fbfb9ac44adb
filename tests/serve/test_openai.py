"""The OpenAI-compatible routes, spoken to by the official `openai` package with nothing
changed but `base_url`: chat (plain and streamed), completions and embeddings. The tiny
Llama checks the wire format quickly; the real SmolLM2 and MiniLM run in the slow test."""

from __future__ import annotations

import httpx
import openai
import pytest

from llmos import Client
from llmos.api.server import ServerThread
from llmos.models.generation import SamplingParams
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig

# about the serving process and the model, not the store: the store queries it makes run on
# both backends in test_http.py and test_feedback.py
pytestmark = pytest.mark.default_backend_only

MESSAGES = [{"role": "user", "content": "what is my balance"}]


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_tiny_chat_and_completions_match_offline(ws, tiny_lm_dir):
    ws.deploy(str(tiny_lm_dir), "tiny-chat")
    llm = ws.llm(str(tiny_lm_dir))
    offline = llm.chat(MESSAGES, SamplingParams(max_new_tokens=6)).text
    raw = llm.complete("hello how are", SamplingParams(max_new_tokens=5))
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        oa = _client(url)
        answer = oa.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=6)
        assert answer.choices[0].message.content == offline
        assert answer.choices[0].finish_reason == "length" and answer.usage.completion_tokens == 6
        stream = oa.chat.completions.create(model="tiny-chat", messages=MESSAGES, max_tokens=6, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream) == offline
        done = oa.completions.create(model="tiny-chat", prompt="hello how are", max_tokens=5)
        assert done.choices[0].text == raw.text
        streamed = oa.completions.create(model="tiny-chat", prompt="hello how are", max_tokens=5, stream=True)
        assert "".join(c.choices[0].text for c in streamed) == raw.text
        client = Client(url)
        assert client.chat("tiny-chat", MESSAGES, max_tokens=6) == offline
        assert "".join(client.chat_stream("tiny-chat", MESSAGES, max_tokens=6)) == offline
        assert client.complete("tiny-chat", "hello how are", max_tokens=5) == raw.text
        # bad requests name the field
        with pytest.raises(openai.UnprocessableEntityError, match="message 1 must have `role` and `content`"):
            oa.chat.completions.create(model="tiny-chat", messages=[{"content": "hi"}])  # type: ignore[list-item]
        r = httpx.post(
            f"{url}/v1/chat/completions", json={"model": "tiny-chat", "messages": MESSAGES, "n": 0}
        )
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("n: ")
        assert r.json()["error"]["param"] == "n"
        with pytest.raises(openai.NotFoundError, match="deployment 'gpt-4' not found"):
            oa.chat.completions.create(model="gpt-4", messages=MESSAGES)
        with pytest.raises(openai.UnprocessableEntityError, match="serves a generation model"):
            oa.embeddings.create(model="tiny-chat", input="hi")


@pytest.mark.slow
def test_openai_package_with_smollm2_and_minilm(tmp_path_factory):
    import torch

    from llmos import Workspace
    from llmos.models.llm_classifier import SentenceEmbedder
    from llmos.models.zoo import resolve_model

    torch.set_num_threads(2)
    ws = Workspace(tmp_path_factory.mktemp("openai") / "ws")
    ws.init()
    ws.deploy("smollm2-135m", "smol")
    ws.deploy("minilm", "minilm")
    question = [{"role": "user", "content": "What is the capital of France?"}]
    try:
        with ServerThread(ws.store, ServeConfig(max_wait_ms=2), policy=open_policy()) as url:
            oa = _client(url)
            answer = oa.chat.completions.create(model="smol", messages=question, max_tokens=30)
            text = answer.choices[0].message.content
            assert "Paris" in text and answer.choices[0].finish_reason == "stop"
            chunks = list(
                oa.chat.completions.create(model="smol", messages=question, max_tokens=30, stream=True)
            )
            assert len(chunks) > 3  # it really streamed, piece by piece
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
            assert chunks[-1].choices[0].finish_reason == "stop"
            texts = ["my card has not arrived", "where is my new card?", "I want a refund"]
            vectors = oa.embeddings.create(model="minilm", input=texts)  # base64 by default in the client
            floats = oa.embeddings.create(model="minilm", input=texts, encoding_format="float")
            expected = SentenceEmbedder(resolve_model("minilm"))(texts)
            for got in (vectors, floats):
                table = torch.tensor([d.embedding for d in got.data])
                assert table.shape == (3, 384)
                assert torch.allclose(table, expected, atol=1e-5)
            sims = expected @ expected.T
            assert sims[0, 1] > sims[0, 2]  # card questions are closer to each other than to refunds
            assert {m.id for m in oa.models.list().data} == {"smol", "minilm"}
    finally:
        torch.set_num_threads(1)
