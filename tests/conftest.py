"""Shared fixtures: an empty workspace, a tiny random BERT with its tokenizer, and a
small synthetic intent dataset whose labels a tiny model can learn in a few epochs."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tiny test models gain nothing from threads, and OpenMP threads spinning against another
# busy process can slow them a hundredfold; tests on real models raise this themselves.
torch.set_num_threads(1)


@pytest.fixture
def threads():
    """Two torch threads for a test on a real model (MiniLM, SmolLM2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


TOPICS = {
    "card": ["card", "arrived", "delivery", "post", "mail", "plastic"],
    "transfer": ["transfer", "send", "account", "iban", "recipient", "wire"],
    "refund": ["refund", "return", "money", "back", "merchant", "charge"],
}
FILLER = ["my", "the", "please", "when", "will", "is", "a", "how", "do", "i", "help", "need"]


def make_rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % len(TOPICS)]
        words = rng.sample(TOPICS[label], 2) + rng.sample(FILLER, rng.randint(1, 6))
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT and a WordPiece tokenizer over the test vocab."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted({w for ws in TOPICS.values() for w in ws} | set(FILLER))
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def ws(home: Path):
    from llmos import Workspace

    workspace = Workspace(home)
    workspace.init()
    return workspace


@pytest.fixture
def intents_csv(tmp_path: Path) -> Path:
    path = tmp_path / "intents.csv"
    make_rows(150).to_csv(path, index=False)
    return path


def snapshot(home: Path) -> dict[str, object]:
    """Everything a failed command must leave untouched: rows of every table and files."""
    import sqlite3

    db = home / "llmos.db"
    tables: dict[str, object] = {}
    if db.exists():
        con = sqlite3.connect(db)
        names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        tables = {n: con.execute(f"select * from {n}").fetchall() for n in names}
        con.close()
    files = (
        sorted(
            str(p.relative_to(home))
            for p in home.rglob("*")
            if p.is_file() and not p.name.startswith("llmos.db")
        )
        if home.exists()
        else []
    )
    return {"tables": tables, "files": files}


def tiny_spec(model_dir: Path, **overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "name": "tiny",
        "model": str(model_dir),
        "method": "full",
        "data": {"train": "intents", "split": {"test": 0.2, "seed": 1}},
        "inputs": [{"name": "text", "max_length": 32}],
        "outputs": [{"name": "label"}],
        "train": {"epochs": 4, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 7},
    }
    spec.update(overrides)
    return spec


@dataclass
class TinyTask:
    """The tiny model's tokenizer and drivers, and `n` encoded synthetic rows."""

    resolved: Any
    tokenizer: Any
    driver: Any
    output: Any
    rows: Any


def tiny_task(model_dir: Path, n: int = 96) -> TinyTask:
    from llmos.modalities.category import CategoryDriver
    from llmos.modalities.text import TextDriver
    from llmos.models.build import load_tokenizer
    from llmos.models.zoo import resolve_model
    from llmos.train.loop import Rows

    frame = make_rows(n)
    resolved = resolve_model(str(model_dir))
    tokenizer = load_tokenizer(resolved.path)
    driver = TextDriver("text", tokenizer, 32)
    output = CategoryDriver.fit("label", frame["label"])
    feats = driver.encode(frame["text"].tolist())
    rows = Rows(feats, [len(f) for f in feats], output.encode(frame["label"], "test"))
    return TinyTask(resolved, tokenizer, driver, output, rows)


def loop_settings(**overrides: Any) -> Any:
    from llmos.train.loop import LoopSettings

    values: dict[str, Any] = {
        "epochs": 8,
        "batch_size": 16,
        "eval_batch_size": 64,
        "lr": 1e-2,
        "head_lr": 3e-2,
        "schedule": "linear",
        "warmup": 0.0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "gradient_accumulation": 1,
        "group_by_length": True,
        "seed": 0,
    }
    values.update(overrides)
    return LoopSettings(**values)


CHAT_WORDS = [
    "hello", "hi", "how", "are", "you", "fine", "thanks", "what", "is", "my", "balance", "card",
    "your", "the", "a", "lost", "freeze", "it", "in", "app", "good", "bye", "help", "please",
    "system", "user", "assistant", "be", "brief", "positive", "negative", "great", "awful", "film",
]  # fmt: skip


def tiny_chat_tokenizer() -> Any:
    """A fast word-level tokenizer with ChatML special tokens and chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from llmos.modalities.chat import CHATML

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    vocab = {w: i for i, w in enumerate(specials + CHAT_WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML
    return fast


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with the tiny chat tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = tiny_chat_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=96,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


CHAT_PAIRS = [
    ("what is my balance", "your balance is in the app"),
    ("my card is lost", "freeze it in the app please"),
    ("hello how are you", "fine thanks how are you"),
    ("good bye", "bye"),
]


def chat_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` one-turn conversations (JSON text, as in a CSV) with fixed answers per question."""
    import json

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        question, answer = rng.choice(CHAT_PAIRS)
        messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        rows.append({"messages": json.dumps(messages), "question": question, "answer": answer})
    return pd.DataFrame(rows)
