"""The `llmos` command as a user runs it: every verb, `--json`, and one-line errors."""

import json
import re

import pytest

from llmos.cli.main import main
from tests.conftest import snapshot, tiny_spec


def write_spec(tmp_path, spec):
    import yaml

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_full_tour(run, tmp_path, intents_csv, tiny_model_dir):
    code, out, _ = run("init")
    assert code == 0 and "workspace ready" in out
    code, out, _ = run("data", "import", str(intents_csv), "--name", "intents", "--json")
    assert code == 0 and json.loads(out)["ref"] == "intents@1" and json.loads(out)["created"]
    code, out, _ = run("data", "list", "--json")
    assert [d["ref"] for d in json.loads(out)] == ["intents@1"]
    code, out, _ = run("data", "show", "intents@1")
    assert code == 0 and "refund" in out and "first rows" in out
    code, out, _ = run("models", "zoo", "--json")
    assert {e["alias"] for e in json.loads(out)} == {"minilm", "smollm2-135m"}

    spec = write_spec(tmp_path, tiny_spec(tiny_model_dir))
    code, out, _ = run("spec", "check", str(spec))
    assert code == 0 and "valid" in out
    code, out, err = run("train", str(spec), "--cpus", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "tiny@1" and 0 <= result["metrics"]["accuracy"] <= 1
    code, out, _ = run("models", "list", "--json")
    assert json.loads(out)[0]["ref"] == "tiny@1"
    code, out, _ = run("models", "show", "tiny", "--json")
    assert json.loads(out)["lineage"]["datasets"] == {"train": "intents@1", "test": None}
    code, out, _ = run("models", "show", "tiny")
    assert "trained on intents@1" in out

    code, out, _ = run("eval", "tiny@1", "--data", "intents", "--json", "--report", str(tmp_path / "rep"))
    assert code == 0 and json.loads(out)["metrics"]["num_examples"] == 150
    assert (tmp_path / "rep" / "confusion_matrix.png").exists()
    code, out, _ = run("predict", "tiny", "refund my money please", "--json")
    row = json.loads(out)[0]
    assert row["text"] == "refund my money please" and row["label"] in row["probabilities"]
    code, out, _ = run("predict", "tiny", "when will my card arrive")
    assert code == 0 and "when will my card arrive" in out

    texts = tmp_path / "texts.txt"
    texts.write_text("my card\nsend a wire\n\n")
    target = tmp_path / "preds.csv"
    code, out, _ = run("predict", "tiny", "--file", str(texts), "--out", str(target), "--json")
    assert code == 0 and json.loads(out)["rows"] == 2
    import pandas as pd

    preds = pd.read_csv(target)
    assert list(preds.columns[:3]) == ["text", "prediction", "score"]
    assert {"p_card", "p_refund", "p_transfer"} <= set(preds.columns)
    code, out, _ = run("predict", "tiny", "--file", str(intents_csv), "--out", str(tmp_path / "p.jsonl"))
    assert code == 0 and len((tmp_path / "p.jsonl").read_text().splitlines()) == 150


def test_spec_check_reports_every_problem(run, tmp_path):
    bad = write_spec(
        tmp_path,
        {
            "name": "x",
            "model": "minilm",
            "data": {"train": "d"},
            "inputs": [{"name": "text"}],
            "outputs": [{"name": "y"}],
            "train": {"lr": 0, "epochs": "three", "extra": 1},
        },
    )
    code, out, _ = run("spec", "check", str(bad))
    assert code == 5
    assert "train.lr: must be > 0" in out and "train.extra: unknown key" in out
    code, out, _ = run("spec", "check", str(bad), "--json")
    assert code == 5 and len(json.loads(out)["problems"]) == 3
    code, out, _ = run("spec", "schema")
    assert json.loads(out)["title"] == "TaskSpec"


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("make", "args", "code", "message"),
    [
        (None, ["data", "import", "{tmp}/missing.csv", "--name", "d"], 3, "no such file"),
        (b"", ["data", "import", "{tmp}/f.csv", "--name", "d"], 4, "the file is empty"),
        (
            b"text,label\n\xffbad,1\n",
            ["data", "import", "{tmp}/f.csv", "--name", "d"],
            4,
            "not UTF-8",
        ),
        (
            b"text,label\nhi,a\n",
            ["data", "import", "{tmp}/f.csv", "--name", "d", "--label", "intent"],
            4,
            "label column 'intent' not found",
        ),
        (None, ["predict", "ghost", "hello"], 3, "model 'ghost' not found"),
        (None, ["eval", "ghost", "--data", "d"], 3, "model 'ghost' not found"),
        (None, ["train", "{tmp}/nospec.yaml"], 3, "no such spec file"),
        (None, ["data", "show", "nope@2"], 3, "dataset 'nope@2' not found"),
        (None, ["data", "import", "{tmp}/f.csv", "--name", "bad name"], 2, "invalid dataset name"),
    ],
)
def test_bad_input_one_line_nonzero_store_unchanged(run, home, tmp_path, make, args, code, message):
    run("init")
    if make is not None:
        (tmp_path / "f.csv").write_bytes(make)
    before = snapshot(home)
    rc, _, err = run(*[a.format(tmp=tmp_path) for a in args])
    assert rc == code
    assert message in one_line_error(err)
    assert snapshot(home) == before


def test_bad_spec_and_unknown_model_leave_store_unchanged(run, home, tmp_path, intents_csv, tiny_model_dir):
    run("data", "import", str(intents_csv), "--name", "intents")
    before = snapshot(home)
    spec = tiny_spec(tiny_model_dir, model="no-such-alias")
    rc, _, err = run("train", str(write_spec(tmp_path, spec)))
    assert rc == 3 and "unknown model 'no-such-alias'" in one_line_error(err)
    spec = tiny_spec(tiny_model_dir, train={"epochs": 0, "bogus": True})
    rc, _, err = run("train", str(write_spec(tmp_path, spec)))
    assert rc == 5 and "train.epochs: must be >= 1" in one_line_error(err)
    spec = tiny_spec(tiny_model_dir, inputs=[{"name": "body"}])
    rc, _, err = run("train", str(write_spec(tmp_path, spec)))
    assert rc == 4 and "input column 'body' not found" in one_line_error(err)
    assert snapshot(home) == before


def test_debug_shows_traceback(run, tmp_path):
    with pytest.raises(Exception, match="no such file"):
        main(["--debug", "data", "import", str(tmp_path / "x.csv"), "--name", "x"])


def test_version_and_help(run):
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("llmos ")
    code, out, _ = run("--help")
    for verb in ("train", "eval", "predict", "demo", "init", "data", "models", "spec"):
        assert verb in out


def test_ctrl_c_cancels_the_training_job_and_registers_nothing(home, tmp_path, intents_csv, tiny_model_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "LLMOS_HOME": str(home), "LLMOS_KERNEL_IDLE_EXIT": "1"}
    cli = [sys.executable, "-m", "llmos.cli.main"]
    subprocess.run([*cli, "data", "import", str(intents_csv), "--name", "intents"], env=env, check=True)
    spec = write_spec(tmp_path, tiny_spec(tiny_model_dir, train={"epochs": 1000, "seed": 1}))
    before = snapshot(home)
    # A shell that starts a command in the background (`make test &` in a script) ignores
    # SIGINT for it, and the ignored disposition is inherited through exec down to this CLI,
    # which then rightly ignores Ctrl-C. Here the CLI stands for a foreground command, so it
    # starts with the default disposition: a handler set here is reset to it at exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [*cli, "train", str(spec), "--cpus", "1"],
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 120
    while not list((home / "jobs").glob("*/checkpoints/*.pt")):  # training is under way
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # not a terminal: the job is cancelled rather than detached
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "job 1 cancelled" in err and "Traceback" not in err
    after = snapshot(home)
    assert after["tables"]["model_versions"] == before["tables"]["model_versions"] == []
    jobs = after["tables"]["jobs"]
    assert len(jobs) == 1 and "cancelled" in jobs[0]

    def stored(snap):
        return [f for f in snap["files"] if f.startswith(("runs/", "artifacts/"))]

    assert stored(after) == stored(before)


@pytest.mark.parametrize(
    "args", [["data", "import", "x.csv", "--bogus"], ["data", "import"], ["no-such-verb"]]
)
def test_usage_errors_exit_2_without_traceback(run, args):
    code, _, err = run(*args)
    assert code == 2
    assert "Error:" in err and "Traceback" not in err


def test_brackets_in_names_print_verbatim(run, tmp_path, intents_csv):
    """Rich reads "[...]" as markup: file names and messages are escaped, not eaten; table
    cells are plain text, and times in them are shown to the second."""
    import pandas as pd

    odd = tmp_path / "rows[v2].csv"
    frame = pd.read_csv(intents_csv)
    frame.loc[0, "text"] = "refund [bold] [urgent] please"
    frame.to_csv(odd, index=False)
    assert run("data", "import", str(odd), "--name", "odd")[0] == 0
    code, out, _ = run("data", "show", "odd")
    assert code == 0 and "rows[v2].csv" in out.replace("\n", "")
    assert "refund [bold] [urgent] please" in out  # a first-rows table cell
    code, out, _ = run("data", "list")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", out) and not re.search(r"\d\d:\d\d:\d\d[.T]", out)
    code, _, err = run("data", "import", str(tmp_path / "gone[1].csv"), "--name", "x")
    assert code != 0 and "gone[1].csv" in err
