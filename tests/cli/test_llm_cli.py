"""`llmos train` (generation), `chat`, `generate` and `export` as a user runs them."""

import io
import json

import pytest

from llmos.cli.main import main
from tests.cli.test_cli import write_spec
from tests.conftest import chat_rows
from tests.train.test_generation import gen_spec


@pytest.fixture
def run(home, capsys, monkeypatch):
    monkeypatch.setenv("LLMOS_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LLMOS_KERNEL_IDLE_EXIT", "1")  # `llmos train` starts a kernel on demand

    def call(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture
def bot(run, tmp_path, tiny_lm_dir):
    path = tmp_path / "chats.csv"
    chat_rows(64).to_csv(path, index=False)
    assert run("data", "import", str(path), "--name", "chats")[0] == 0
    code, out, err = run("train", str(write_spec(tmp_path, gen_spec(tiny_lm_dir))), "--cpus", "1")
    assert code == 0, err
    assert "perplexity" in out and "registered bot@1" in out and "reference" in out
    return run


def test_generate_chat_and_export(bot, tmp_path):
    code, out, _ = bot("generate", "bot", "good bye", "my card is lost", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["text"] for r in rows] == ["bye", "freeze it in the app please"]
    assert rows[0]["finish_reason"] == "stop" and rows[0]["prompt_tokens"] > 0
    code, out, _ = bot("generate", "bot", "good bye")
    assert code == 0 and out.strip() == "bye"

    code, out, _ = bot(
        "chat", "bot", "--temperature", "0", stdin="good bye\n/reset\nwhat is my balance\n/exit\n"
    )
    assert code == 0
    assert "assistant> bye" in out and "history cleared" in out and "your balance is in the app" in out

    code, out, _ = bot("models", "list")
    assert code == 0 and "generation" in out
    code, out, _ = bot("models", "show", "bot")
    assert code == 0 and "perplexity" in out
    code, out, _ = bot("eval", "bot", "--data", "chats", "--json")
    assert code == 0 and json.loads(out)["metrics"]["num_examples"] == 64

    code, out, _ = bot("export", "bot", "--format", "merged", "--out", str(tmp_path / "m"), "--json")
    assert code == 0 and "model.safetensors" in json.loads(out)["files"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("generate", "bot", "hi", "--top-p", "0"), 2, "top_p must be in (0, 1]"),
        (("generate", "nope", "hi"), 3, "unknown model 'nope'"),
        (("export", "bot", "--format", "gguf", "--out", "x"), 2, "unknown export format 'gguf'"),
        (("export", "bot", "--format", "adapter", "--out", "x"), 6, "no adapter to export"),
        (("predict", "bot", "hello"), 2, "is a generation model: use `llmos generate`"),
    ],
)
def test_bad_llm_input_is_one_line(bot, args, code, message):
    got, _, err = bot(*args)
    assert got == code, err
    assert message in err and len(err.strip().splitlines()) == 1
