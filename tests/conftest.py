"""Shared fixtures: an empty workspace, a tiny random BERT with its tokenizer, and a
small synthetic intent dataset whose labels a tiny model can learn in a few epochs.

`--backend scale` (or LLMOS_TEST_BACKEND=scale) puts every `home`/`ws` workspace on the
scale-out parts: its own database in a throwaway PostgreSQL cluster and its own prefix
in a moto S3 server, both started once per session (`tests/servers.py`)."""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _thread_share() -> int:
    """This test process's share of the cores: all of them, or under pytest-xdist (`-n N`)
    one N-th of them, at least one."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, len(os.sched_getaffinity(0)) // max(1, workers))


THREAD_SHARE = _thread_share()
if "PYTEST_XDIST_WORKER" in os.environ:
    # The processes tests start (CLI, servers, kernels; a kernel still sets its jobs'
    # threads from their cpus) take the worker's share too, not every core each. Threads
    # that wait for the other worker's busy cores sleep rather than spin.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(THREAD_SHARE))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Tiny test models gain nothing from threads, and OpenMP threads spinning against another
# busy process can slow them a hundredfold; tests on real models raise this themselves.
torch.set_num_threads(1)


@pytest.fixture
def threads():
    """Two torch threads for a test on a real model (MiniLM, SmolLM2), or this xdist
    worker's share of the cores if that is fewer."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, THREAD_SHARE))
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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("local", "scale"),
        default=os.environ.get("LLMOS_TEST_BACKEND", "local"),
        help="local: SQLite + folder (default); scale: PostgreSQL + moto S3 for every `home` workspace",
    )


# Tests known to take a minute or more (mostly waiting: schedules, kernels, servers). Under
# pytest-xdist they start first, so that none of them is the last thing a worker runs while
# the other has finished.
LONG = ("e2e", "test_jobs_concurrency", "test_every_10s_fires_on_time", "behind_nginx", "test_ray_cluster")


def _long(item: pytest.Item) -> bool:
    return "slow" in item.keywords or any(word in item.nodeid for word in LONG)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ:  # every worker collects the same order
        items.sort(key=lambda item: not _long(item))
    if config.getoption("--backend") != "scale":
        return
    skip = pytest.mark.skip(reason="about the SQLite file itself (the scale backend has none)")
    once = pytest.mark.skip(
        reason="not about the store (a timing test, or the serving process): it runs in the default pass"
    )
    for item in items:
        if "local_only" in item.keywords:
            item.add_marker(skip)
        elif "default_backend_only" in item.keywords:
            item.add_marker(once)


# --- pytest-xdist: tests that time themselves run alone -----------------------------------
# Under `-n N` every test holds a shared lock on one file for its setup, call and teardown,
# and a test marked `serial` (one that asserts on its own wall time) holds it exclusively:
# it waits for the tests running on the other workers to end and none starts until it has.
# A turnstile lock taken before either keeps a waiting serial test from being overtaken.
# Without xdist there is nothing to wait for and no lock is taken.


def _test_lock_paths() -> tuple[Path, Path] | None:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None or "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    import tempfile

    base = Path(tempfile.gettempdir()) / f"llmos-tests-{run}"
    return base.with_suffix(".lock"), base.with_suffix(".turn")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    paths = _test_lock_paths()
    if paths is None:
        return (yield)
    import fcntl

    exclusive = item.get_closest_marker("serial") is not None
    with paths[0].open("a") as lock, paths[1].open("a") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pytest_report_header(config: pytest.Config) -> str:
    return f"llmos backend: {config.getoption('--backend')}"


@dataclass
class ScaleServers:
    admin_url: str  # postgresql://postgres@127.0.0.1:PORT/postgres
    s3_endpoint: str
    bucket: str = "llmos-test"
    template: str = "llmos_template"
    count: int = 0

    def db_url(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(sql)


@pytest.fixture(scope="session")
def scale_servers(request: pytest.FixtureRequest):
    """PostgreSQL + S3 for the session (None on the local backend)."""
    if request.config.getoption("--backend") != "scale":
        yield None
        return
    from llmos.core.settings import sqlalchemy_url
    from llmos.store import migrations
    from llmos.store.db import open_engine
    from tests import servers

    os.environ.update(servers.s3_env())
    with servers.postgres() as pg, servers.moto_s3() as s3:
        found = ScaleServers(pg, s3)
        servers.make_bucket(s3, found.bucket)
        found.admin(f"CREATE DATABASE {found.template}")
        engine = open_engine(sqlalchemy_url(found.db_url(found.template)))
        migrations.upgrade(engine)  # each test's database is a copy: no migration per test
        engine.dispose()
        yield found


@pytest.fixture
def home(tmp_path: Path, scale_servers: ScaleServers | None):
    path = tmp_path / "ws"
    if scale_servers is None:
        yield path
        return
    from llmos.core.settings import Settings

    scale_servers.count += 1
    name = f"t{os.getpid()}_{scale_servers.count}"
    scale_servers.admin(f"CREATE DATABASE {name} TEMPLATE {scale_servers.template}")
    Settings(path).write_store_config(
        scale_servers.db_url(name), f"s3://{scale_servers.bucket}/{name}?endpoint={scale_servers.s3_endpoint}"
    )
    yield path
    with contextlib.suppress(Exception):  # else the cluster goes at the session's end
        scale_servers.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
    """Everything a failed command must leave untouched: rows of every table and files
    (and, on the scale backend, the PostgreSQL tables and the S3 objects)."""
    import sqlite3

    db = home / "llmos.db"
    tables: dict[str, object] = {}
    config = home / "store.json"
    if config.exists():
        import json

        return {**_remote_snapshot(json.loads(config.read_text())), "files": _files(home)}
    if db.exists():
        con = sqlite3.connect(db)
        names = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        tables = {n: con.execute(f"select * from {n}").fetchall() for n in names}
        con.close()
    return {"tables": tables, "files": _files(home)}


def _files(home: Path) -> list[str]:
    return (
        sorted(
            str(p.relative_to(home))
            for p in home.rglob("*")
            if p.is_file() and not p.name.startswith("llmos.db")
        )
        if home.exists()
        else []
    )


def _remote_snapshot(config: dict[str, str]) -> dict[str, object]:
    from sqlalchemy import create_engine, inspect, text

    from llmos.core.settings import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(config["db_url"]))
    with engine.connect() as conn:
        names = inspect(conn).get_table_names()
        tables = {n: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{n}"')).all())) for n in names}
    engine.dispose()
    from llmos.store.s3 import S3Artifacts

    s3 = S3Artifacts(config["artifacts_url"], Path("/nonexistent"))
    return {"tables": tables, "objects": s3.digests()}


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


def record_steps(monkeypatch: pytest.MonkeyPatch, step_s: float) -> list[tuple[float, list[int | None]]]:
    """Slow the generation engine's decoding to `step_s` a step and record each step's time
    and rows (their seeds): what the batching and cancellation tests read."""
    from llmos.models.generation import Generator

    seen: list[tuple[float, list[int | None]]] = []
    original = Generator._sample

    def slow(self: Any, logits: Any, rows: Any) -> Any:
        seen.append((time.monotonic(), [r.params.seed for r in rows]))
        time.sleep(step_s)
        return original(self, logits, rows)

    monkeypatch.setattr(Generator, "_sample", slow)
    return seen
