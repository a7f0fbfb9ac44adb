"""The generation task end to end on a tiny Llama: train, evaluate, chat, export; and
zero-/few-shot classification through the ordinary predict path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from llmos.core.errors import DataError, ModelError, SpecError, UsageError
from tests.conftest import chat_rows, snapshot


def gen_spec(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "bot",
        "task": "generation",
        "model": str(model_dir),
        "method": "full",
        "data": {"train": "chats", "split": {"test": 0.25, "seed": 0}},
        "inputs": [{"name": "messages"}],
        "generation": {"max_length": 64, "eval": {"samples": 8, "max_new_tokens": 8, "show": 2}},
        "train": {"epochs": 12, "batch_size": 8, "lr": 1e-2, "seed": 0},
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def chats(ws, tmp_path: Path) -> Any:
    path = tmp_path / "chats.csv"
    chat_rows(64).to_csv(path, index=False)
    ws.import_dataset(path, name="chats", label="answer")
    return ws


@pytest.fixture
def trained(chats, tiny_lm_dir: Path) -> Any:
    return chats.train(gen_spec(tiny_lm_dir))


def test_training_lowers_perplexity_and_registers_the_model(trained):
    metrics = trained.metrics
    assert trained.model.ref == "bot@1" and trained.model.task == "generation"
    assert metrics["perplexity"] < metrics["before"]["perplexity"] / 2
    assert {"exact_match", "rouge_l", "samples"} <= set(metrics)
    assert metrics["rouge_l"] > 0.5
    sample = metrics["samples"][0]
    assert {"prompt", "reference", "before", "after"} <= set(sample)


def test_the_trained_model_answers_through_its_saved_template(chats, trained):
    """chat (via the registered folder) renders exactly what training rendered."""
    from llmos.modalities.chat import ChatDriver

    llm = chats.llm("bot")
    conv = [{"role": "user", "content": "good bye"}, {"role": "assistant", "content": "bye"}]
    driver = ChatDriver("messages", llm.format, 64)
    example = driver.encode_conversations([conv], "test")[0]
    prompt = llm.format.prompt_ids(conv[:1])
    assert example.ids[: len(prompt)] == prompt
    answers = chats.generate("bot", ["good bye", "my card is lost"])
    assert [a.text for a in answers] == ["bye", "freeze it in the app please"]


def test_prompt_and_response_columns_train_too(chats, tiny_lm_dir: Path):
    spec = gen_spec(
        tiny_lm_dir,
        name="pairs",
        inputs=[{"type": "text", "name": "question"}],
        outputs=[{"type": "text", "name": "answer"}],
    )
    spec["train"]["epochs"] = 1
    outcome = chats.train(spec)
    assert outcome.model.ref == "pairs@1"
    metrics = chats.evaluate("pairs", "chats")
    assert metrics["num_examples"] == 64 and "perplexity" in metrics


def test_lora_export_merged_and_adapter_give_llmos_logits(chats, tiny_lm_dir: Path, tmp_path: Path):
    """Merged weights load in plain transformers, the adapter in plain peft; both give the
    logits llmos computes (LoRA learns slowly on a random tiny model, but it learns)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec = gen_spec(tiny_lm_dir, method={"type": "lora", "r": 4, "alpha": 8})
    spec["train"].update(epochs=3, lr=3e-2)
    trained = chats.train(spec)
    assert trained.metrics["perplexity"] < trained.metrics["before"]["perplexity"]
    llm = chats.llm("bot")
    ids = torch.tensor([llm.format.prompt_ids([{"role": "user", "content": "what is my balance"}])])
    with torch.inference_mode():
        ours = llm.lm(input_ids=ids).logits
    merged = chats.export("bot", "merged", tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(merged).eval()
    with torch.inference_mode():
        assert torch.allclose(plain(input_ids=ids).logits, ours, atol=1e-4)
    adapter = chats.export("bot", "adapter", tmp_path / "adapter")
    assert (adapter / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(trained.model.base_model)
    with torch.inference_mode():
        again = PeftModel.from_pretrained(base, adapter).eval()(input_ids=ids).logits
    assert torch.allclose(again, ours, atol=1e-4)
    with pytest.raises(ModelError, match="not empty"):
        chats.export("bot", "merged", tmp_path / "merged")


def test_full_models_export_merged_only(chats, trained, tmp_path: Path):
    from transformers import AutoModelForCausalLM

    folder = chats.export("bot", "merged", tmp_path / "full")
    assert AutoModelForCausalLM.from_pretrained(folder).config.vocab_size > 0
    with pytest.raises(ModelError, match="no adapter to export"):
        chats.export("bot", "adapter", tmp_path / "adapter")
    assert not (tmp_path / "adapter").exists()


@pytest.mark.parametrize("method", ["ia3", "prompt", "prefix", "adalora"])
def test_other_methods_train_and_generate(chats, tiny_lm_dir: Path, method: str):
    spec = gen_spec(tiny_lm_dir, name=f"bot-{method}", method=method)
    spec["train"] = {"epochs": 1, "batch_size": 16, "seed": 0}
    spec["generation"]["eval"] = {"samples": 2, "max_new_tokens": 4}
    outcome = chats.train(spec)
    assert outcome.metrics["perplexity"] > 0
    (answer,) = chats.generate(outcome.model.ref, ["hello"])
    assert answer.completion_tokens <= 256


def test_overlong_rows_fail_with_the_row_or_are_truncated(chats, tiny_lm_dir: Path, home: Path):
    long_rows = chat_rows(20)
    long_rows.loc[5, "messages"] = (
        '[{"role": "user", "content": "' + "hello " * 70 + '"}, {"role": "assistant", "content": "hi"}]'
    )
    path = home.parent / "long.csv"
    long_rows.to_csv(path, index=False)
    chats.import_dataset(path, name="long")
    before = snapshot(home)
    spec = gen_spec(tiny_lm_dir, data={"train": "long", "split": {"test": 0.2, "seed": 0}})
    with pytest.raises(DataError, match=r"row \d+: 7\d tokens, more than generation.max_length \(64\)"):
        chats.train(spec)
    assert snapshot(home) == before
    spec["generation"]["max_length"] = 200
    with pytest.raises(SpecError, match=r"max_length \(200\) is longer than the context"):
        chats.train(spec)
    spec["generation"] = {"max_length": 64, "overflow": "drop", "eval": {"samples": 0}}
    spec["train"]["epochs"] = 1
    assert chats.train(spec).model.ref == "bot@1"


def test_classification_models_are_not_chat_models(ws, intents_csv, tiny_model_dir):
    from tests.conftest import tiny_spec

    ws.import_dataset(intents_csv, name="intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1}))
    with pytest.raises(UsageError, match="tiny@1 is a text-classification model"):
        ws.llm("tiny")


SENTIMENT = [
    ("great film", "pos"),
    ("great great film", "pos"),
    ("awful film", "neg"),
    ("awful awful", "neg"),
    ("good film", "pos"),
    ("awful", "neg"),
]


@pytest.mark.parametrize("method", ["zero-shot", "few-shot"])
def test_prompt_classifiers_report_like_fine_tuned_ones(
    ws, tmp_path: Path, tiny_lm_dir, tiny_model_dir, method
):
    rows = pd.DataFrame(SENTIMENT * 4, columns=["text", "label"])
    rows.to_csv(tmp_path / "sent.csv", index=False)
    ws.import_dataset(tmp_path / "sent.csv", name="sent")
    spec: dict[str, Any] = {
        "name": f"llm-{method}",
        "model": str(tiny_lm_dir),
        "method": {"type": method, "labels": {"pos": "positive", "neg": "negative"}},
        "data": {"train": "sent", "split": {"test": 0.5, "seed": 0}},
        "inputs": [{"name": "text"}],
        "outputs": [{"name": "label"}],
    }
    if method == "few-shot":
        spec["method"].update(k=2, embedder=str(tiny_model_dir))
    outcome = ws.train(spec)
    metrics = outcome.metrics
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix"} <= set(metrics)
    assert metrics["trainable_parameters"] == 0 and outcome.history == []
    # the registered model predicts and evaluates through the same path as a fine-tuned one
    (row,) = ws.predict(outcome.model.ref, ["great film"])
    assert row["label"] in ("pos", "neg") and sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    again = ws.evaluate(outcome.model.ref, "sent")
    assert again["num_examples"] == 24


def test_few_shot_prompts_show_the_most_similar_examples(tiny_lm_dir, tiny_model_dir):
    from llmos.modalities.chat import ChatFormat
    from llmos.modalities.prompt import ExamplePool, LabelPromptDriver
    from llmos.models.build import load_tokenizer
    from llmos.models.llm_classifier import SentenceEmbedder
    from llmos.models.zoo import resolve_model

    embed = SentenceEmbedder(resolve_model(str(tiny_model_dir)))
    texts = ["card arrived mail", "refund money back", "transfer send iban"]
    pool = ExamplePool(texts, [0, 1, 2], embed(texts))
    chat = ChatFormat(load_tokenizer(str(tiny_lm_dir)))
    driver = LabelPromptDriver("text", chat, ["card", "refund", "transfer"], k=1, pool=pool, embed=embed)
    assert driver.shots(texts) == [[0], [1], [2]]
    messages = driver.messages("refund please", [1])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "refund" and "card, refund, transfer" in messages[0]["content"]


def test_spec_rules_for_llm_tasks(tiny_lm_dir):
    from llmos.spec import parse_spec

    base = gen_spec(tiny_lm_dir)
    with pytest.raises(SpecError, match="leave `outputs` out"):
        parse_spec({**base, "outputs": [{"type": "text", "name": "answer"}]})
    with pytest.raises(SpecError, match="is for text-classification"):
        parse_spec({**base, "method": "zero-shot"})
    with pytest.raises(SpecError, match=r"generation\.overflow"):
        parse_spec({**base, "generation": {"overflow": "wrap"}})


def test_packing_fills_sequences_up_to_max_length(chats, tiny_lm_dir: Path):
    from llmos.modalities.chat import Example, pack

    packed = pack([Example([1] * 10, [5] * 10) for _ in range(7)], 25)
    assert [len(p.ids) for p in packed] == [20, 20, 20, 10]
    spec = gen_spec(tiny_lm_dir, name="packed")
    spec["generation"]["packing"] = True
    spec["train"]["epochs"] = 1
    outcome = chats.train(spec)
    assert outcome.metrics["perplexity"] > 0


def test_rouge_l_and_exact_match():
    from llmos.train.metrics import exact_match, rouge_l

    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("the cat", "the cat sat on the mat") == pytest.approx(2 * (1 * 1 / 3) / (1 + 1 / 3))
    assert rouge_l("dogs bark", "the cat sat") == 0.0
    assert exact_match(" Freeze   it ", "freeze it") and not exact_match("freeze", "freeze it")


def test_a_causal_lm_without_template_needs_one_given(ws, tiny_lm_dir: Path, tmp_path: Path):
    import shutil

    bare = tmp_path / "bare-lm"
    shutil.copytree(tiny_lm_dir, bare)
    for name in ("chat_template.jinja", "tokenizer_config.json"):
        path = bare / name
        if name == "chat_template.jinja":
            path.unlink(missing_ok=True)
        else:
            import json

            config = json.loads(path.read_text())
            config.pop("chat_template", None)
            path.write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"no chat template.*--chat-template"):
        ws.llm(str(bare))
    (answer,) = ws.generate(str(bare), ["hello"], chat_template="chatml")
    assert answer.prompt_tokens == len(
        ws.llm(str(bare), "chatml").format.prompt_ids([{"role": "user", "content": "hello"}])
    )


def test_every_entry_point_sends_the_prompt_training_used(chats, trained, monkeypatch):
    """Training, evaluation, chat and generate all render the conversation through the
    template saved with the model: the ids each path decodes from are the training
    example's ids up to the answer."""
    from llmos.modalities.chat import ChatDriver
    from llmos.models.generation import Generator
    from llmos.train.generation import generate_answers

    seen: list[list[int]] = []
    real = Generator.generate

    def spy(self, prompts, params, on_text=None):
        seen.extend(list(p) for p in prompts)
        return real(self, prompts, params, on_text)

    monkeypatch.setattr(Generator, "generate", spy)
    conv = [{"role": "user", "content": "what is my balance"}, {"role": "assistant", "content": "x"}]
    llm = chats.llm("bot")
    example = ChatDriver("messages", llm.format, 64).encode_conversations([conv], "t")[0]
    llm.chat(conv[:1])  # llmos chat / the SDK
    chats.generate("bot", ["what is my balance"])  # llmos generate
    generate_answers(llm.lm, llm.format, [conv], 4)  # evaluation after training
    assert len(seen) == 3
    for prompt in seen:
        assert example.ids[: len(prompt)] == prompt and example.labels[len(prompt)] != -100
