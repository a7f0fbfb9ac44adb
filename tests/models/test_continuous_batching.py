"""Continuous batching on a tiny random Llama: a request sent while another decodes joins
the running batch at the next step and answers before the long one ends, each answer is
what the request decodes alone, and a cancelled request frees its slot within one step.
Decoding is slowed per step so the requests overlap on any machine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmos.models.generation import GenerationEngine, Generator, SamplingParams
from tests.conftest import record_steps

STEP_S = 0.02


@pytest.fixture(scope="module")
def generator(tiny_lm_dir: Path) -> Generator:
    from llmos.modalities.chat import ChatFormat
    from llmos.models.build import load_tokenizer
    from llmos.models.causal import load_causal_lm

    chat = ChatFormat(load_tokenizer(str(tiny_lm_dir)))
    return Generator(load_causal_lm(str(tiny_lm_dir)).eval(), chat.tokenizer, [chat.turn_end])


@pytest.fixture
def steps(monkeypatch):
    """Each sampling step's time and rows (their seeds), STEP_S apart."""
    return record_steps(monkeypatch, STEP_S)


def _wait(predicate, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def _prompt(generator: Generator, text: str) -> list[int]:
    return list(generator.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_a_new_request_joins_the_running_batch_and_leaves_when_done(generator, steps):
    long_p, short_p = _prompt(generator, "hello how are you today"), _prompt(generator, "my card")
    # an end-of-turn token would end the long one early: only the length ends it
    long_params = SamplingParams(max_new_tokens=40, temperature=1.0, seed=7)
    short_params = SamplingParams(max_new_tokens=4, seed=8)
    alone_long = generator.generate([long_p], [long_params])[0]
    alone_short = generator.generate([short_p], [short_params])[0]
    engine = GenerationEngine(generator, max_batch=4, max_wait_ms=1)
    try:
        first = engine.submit(long_p, long_params)
        assert _wait(lambda: engine.steps >= 3)  # the long one is decoding
        second = engine.submit(short_p, short_params)
        short = second.result(10)
        assert not first.future.done()  # it answered while the long one still ran
        long = first.result(10)
    finally:
        engine.close()
    assert (short.text, short.completion_tokens) == (alone_short.text, alone_short.completion_tokens)
    assert (long.text, long.finish_reason) == (alone_long.text, alone_long.finish_reason)
    together = [seeds for _, seeds in steps if 7 in seeds and 8 in seeds]
    assert 1 <= len(together) <= 5  # joined the running batch, and left it when done
    assert 2 in engine.batches and engine.running == 0


def test_a_cancelled_request_frees_its_slot_within_one_step(generator, steps):
    prompt = _prompt(generator, "hello how are you today")
    engine = GenerationEngine(generator, max_batch=4, max_wait_ms=1)
    try:
        stay = engine.submit(prompt, SamplingParams(max_new_tokens=60, temperature=1.0, seed=1))
        gone = engine.submit(prompt, SamplingParams(max_new_tokens=60, temperature=1.0, seed=2))
        assert _wait(lambda: engine.running == 2)
        pieces = gone.stream()
        next(pieces)  # it has streamed text: the client goes away now
        gone.cancel()
        cancelled = time.monotonic()
        assert _wait(lambda: engine.running == 1, within=2.0)
        time.sleep(3 * STEP_S)
        after = [seeds for at, seeds in steps if at > cancelled]
        assert sum(1 for seeds in after if 2 in seeds) <= 1  # the step in flight, at most
        assert any(seeds == [1] for seeds in after)  # the other one goes on alone
        assert gone.future.cancelled() and not stay.future.done()
        stay.cancel()
        assert _wait(lambda: engine.running == 0, within=2.0)
    finally:
        engine.close()
