"""Chat format, batched generation and the zero-shot label scorer, on a tiny random Llama."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from llmos.core.errors import DataError, ModelError, UsageError
from llmos.modalities.chat import IGNORE, ChatFormat, parse_messages
from llmos.models.generation import GenerationEngine, Generator, SamplingParams

CONV = [
    {"role": "user", "content": "hello how are you"},
    {"role": "assistant", "content": "fine thanks"},
    {"role": "user", "content": "what is my balance"},
    {"role": "assistant", "content": "your balance is in the app"},
]


@pytest.fixture(scope="module")
def lm(tiny_lm_dir: Path):
    from llmos.models.causal import load_causal_lm

    return load_causal_lm(str(tiny_lm_dir)).eval()


@pytest.fixture(scope="module")
def chat(tiny_lm_dir: Path) -> ChatFormat:
    from llmos.models.build import load_tokenizer

    return ChatFormat(load_tokenizer(str(tiny_lm_dir)))


def test_loss_only_on_assistant_turns_including_the_end_of_turn(chat: ChatFormat):
    ids, labels = chat.example(CONV)
    tok = chat.tokenizer
    learned = [tok.convert_ids_to_tokens(i) for i, lab in zip(ids, labels) if lab != IGNORE]
    assert learned == [
        "fine",
        "thanks",
        "<|im_end|>",
        "your",
        "balance",
        "is",
        "in",
        "the",
        "app",
        "<|im_end|>",
    ]


def test_training_and_generation_render_the_same_prompt(chat: ChatFormat):
    """The ids a chat request sends are exactly the training example's ids up to the answer."""
    ids, labels = chat.example(CONV)
    for turn in (1, 3):
        prompt = chat.prompt_ids(CONV[:turn])
        assert ids[: len(prompt)] == prompt
        assert labels[len(prompt)] != IGNORE and labels[len(prompt) - 1] == IGNORE


def test_system_prompt_is_added_once(chat: ChatFormat):
    with_system = ChatFormat(chat.tokenizer, system_prompt="be brief")
    text = with_system.render(with_system.with_system(CONV[:1]))
    assert text.startswith("<|im_start|>system\nbe brief<|im_end|>")
    own = [{"role": "system", "content": "please"}, *CONV[:1]]
    assert with_system.with_system(own) == own


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "robot", "content": "hi"}], "message 1 has unknown role 'robot'"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}], "empty assistant turn"),
        ([{"role": "user", "content": "hi"}], "no assistant message"),
        ([{"role": "assistant", "content": "hi"}], "must start with a user message"),
        ('[{"role": "user"', "not a JSON list of messages"),
        ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "may only come first"),
    ],
)
def test_bad_conversations_are_named(messages, error):
    with pytest.raises(DataError, match=error) as info:
        parse_messages(messages, "dataset chats@1, row 3")
    assert str(info.value).startswith("dataset chats@1, row 3: ")


def test_a_tokenizer_without_chat_template_says_how_to_supply_one(chat: ChatFormat):
    import copy

    bare = copy.deepcopy(chat.tokenizer)
    bare.chat_template = None
    with pytest.raises(ModelError, match=r"chatml.*generation\.chat_template"):
        ChatFormat(bare)
    assert ChatFormat(bare, "chatml").turn_end == "<|im_end|>"


def test_batched_greedy_decoding_equals_transformers_generate(lm, chat: ChatFormat):
    generator = Generator(lm, chat.tokenizer, [chat.turn_end])
    prompts = [
        chat.prompt_ids([{"role": "user", "content": q}])
        for q in ("hello", "what is my balance please", "my card is lost in the app")
    ]
    results = generator.generate(prompts, [SamplingParams(max_new_tokens=12) for _ in prompts])
    for prompt, result in zip(prompts, results):
        ref = lm.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=sorted(generator.eos),
            pad_token_id=generator.pad_id,
        )[0, len(prompt) :].tolist()
        ref = [t for t in ref if t not in generator.eos and t != generator.pad_id]
        assert result.text == chat.tokenizer.decode(ref, skip_special_tokens=True)
        assert result.completion_tokens == len(ref)


def test_stop_sequences_limits_and_streaming(lm, chat: ChatFormat):
    generator = Generator(lm, chat.tokenizer, [chat.turn_end])
    prompt = chat.prompt_ids([{"role": "user", "content": "hello"}])
    free = generator.generate([prompt], [SamplingParams(max_new_tokens=8)])[0]
    assert free.finish_reason == "length" and free.completion_tokens == 8
    words = free.text.split()
    assert len(words) >= 3
    stopped = generator.generate([prompt], [SamplingParams(max_new_tokens=8, stop=[words[2]])])[0]
    assert stopped.finish_reason == "stop"
    assert words[2] not in stopped.text and free.text.startswith(stopped.text)
    pieces: list[str] = []
    streamed = generator.generate([prompt], [SamplingParams(max_new_tokens=8)], lambda i, t: pieces.append(t))
    assert "".join(pieces) == streamed[0].text == free.text


def test_sampling_is_seeded_and_checked(lm, chat: ChatFormat):
    generator = Generator(lm, chat.tokenizer, [chat.turn_end])
    prompt = chat.prompt_ids([{"role": "user", "content": "hello"}])
    params = SamplingParams(max_new_tokens=10, temperature=1.5, top_p=0.9, seed=3)
    one, two = (generator.generate([prompt], [params])[0].text for _ in range(2))
    assert one == two
    with pytest.raises(UsageError, match="top_p"):
        generator.generate([prompt], [SamplingParams(top_p=0)])
    with pytest.raises(UsageError, match="context is 96"):
        generator.generate([list(range(5, 30)) * 4], [SamplingParams()])


def test_engine_batches_concurrent_requests(lm, chat: ChatFormat):
    generator = Generator(lm, chat.tokenizer, [chat.turn_end])
    engine = GenerationEngine(generator, max_batch=8, max_wait_ms=200)
    questions = ["hello", "what is my balance", "good bye", "my card is lost", "help please", "hi"]
    prompts = [chat.prompt_ids([{"role": "user", "content": q}]) for q in questions]
    alone = [generator.generate([p], [SamplingParams(max_new_tokens=10)])[0].text for p in prompts]
    results: dict[int, str] = {}

    def call(i: int) -> None:
        handle = engine.submit(prompts[i], SamplingParams(max_new_tokens=10))
        results[i] = "".join(handle.stream())

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert [results[i] for i in range(len(prompts))] == alone
    assert max(engine.batches) > 1  # requests were decoded together


def test_label_scorer_equals_full_forward_log_likelihood(lm, chat: ChatFormat):
    """The cached prompt + per-label answer pass scores exactly what a full forward pass does."""
    from llmos.modalities.prompt import LabelPromptDriver
    from llmos.models.llm_classifier import LabelScorer

    driver = LabelPromptDriver("text", chat, ["positive", "negative", "great film"])
    features = driver.encode(["great film", "awful", "hello how are you"])
    scores = LabelScorer(lm, max_rows=4)(**driver.collate(features))
    assert scores.shape == (3, 3)
    for i, prompt in enumerate(features):
        for j, answer in enumerate(driver.answers):
            ids = torch.tensor([prompt + answer])
            with torch.no_grad():
                logp = lm(input_ids=ids).logits[0].log_softmax(-1)
            expected = sum(float(logp[len(prompt) - 1 + k, tok]) for k, tok in enumerate(answer))
            assert float(scores[i, j]) == pytest.approx(expected, abs=1e-4)
