"""Acceptance of F8: the same life of a model as `tests/api/test_e2e_http.py`, through the
`llmos` command with `--url` and `--token` only (a real `llmos serve` process, the real
MiniLM, the Banking77 demo data): import, spec check (three errors, exit 5, then fixed),
train followed to the end, metrics and the confusion matrix, deploy, predict, feedback
from a file, adapt to a promotion, the audit log and its verification. Each verb's exit
code is the one the same verb gives locally; `--json` output is what the HTTP API answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.api.test_e2e_http import NEW, bank_files, start_server

pytestmark = pytest.mark.slow


def test_a_model_s_whole_life_through_llmos_url(tmp_path):
    home = tmp_path / "ws"
    local = [sys.executable, "-m", "llmos.cli.main", "--home", str(home)]
    assert subprocess.run([*local, "init"], capture_output=True).returncode == 0
    boot = subprocess.run(
        [*local, "auth", "init", "--name", "root", "--json"], capture_output=True, text=True
    )
    token = json.loads(boot.stdout)["token"]
    server, url = start_server(home, tmp_path / "serve.log")
    # a client machine: no workspace of its own, only the server's address and a token
    env = {**os.environ, "LLMOS_URL": url, "LLMOS_TOKEN": token, "LLMOS_HOME": str(tmp_path / "nowhere")}

    def llmos(*args: str, code: int = 0) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "llmos.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == code, (args, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout if code == 0 else done.stdout + done.stderr

    try:
        train, seen, labels, old = bank_files(tmp_path)

        # data
        for name in ("bank-train", "bank-test"):
            shown = json.loads(
                llmos("data", "import", str(tmp_path / f"{name}.csv"), "--name", name, "--json")
            )
            assert shown["ref"] == f"{name}@1"
        assert "card_arrival" in llmos("data", "show", "bank-train@1")

        # spec: three errors (exit 5, each path named), then the fixed spec
        spec = {
            "name": "intents",
            "model": "minilm",
            "method": "lora",
            "data": {"train": "bank-train", "test": "bank-test"},
            "inputs": [{"name": "text", "max_length": 32}],
            "outputs": [{"name": "category", "labels": labels}],
            "train": {"epochs": 3, "batch_size": 32, "seed": 42},
        }
        broken = tmp_path / "broken.yaml"
        broken.write_text(json.dumps({**spec, "method": "lorra", "train": {"epochs": 0, "lr": -1}}))
        said = llmos("spec", "check", str(broken), code=5)
        for path in ("method", "train.epochs", "train.lr"):
            assert path in said, (path, said)
        good = tmp_path / "intents.yaml"
        good.write_text(json.dumps(spec))
        llmos("spec", "check", str(good))

        # train on the server, followed through the event stream, then the registry
        trained = json.loads(llmos("train", str(good), "--cpus", "2", "--json"))
        assert trained["model"] == "intents@1" and trained["metrics"]["accuracy"] > 0.9
        info = json.loads(llmos("models", "show", "intents@1", "--json"))
        assert info["metrics"]["accuracy"] == trained["metrics"]["accuracy"]
        png = tmp_path / "cm.png"
        llmos("models", "download", "intents@1", "report/confusion_matrix.png", "--out", str(png))
        assert png.read_bytes().startswith(b"\x89PNG")

        # deploy, predict in the server's process
        llmos("deploy", "intents@1", "--name", "bank")
        assert "intents@1" in llmos("deployments", "show", "bank")
        answer = json.loads(llmos("predict", "intents@1", "I am still waiting on my card?", "--json"))
        assert answer[0]["label"] == "card_arrival", answer

        # feedback from a file: labelled rows of the withheld intents (the spec declares them)
        unused = train.drop(seen.index)
        rows = pd.concat(
            [
                unused[unused.category.isin(NEW)].groupby("category").head(40),
                unused[unused.category.isin(old)].groupby("category").head(3),
            ]
        )
        rows.rename(columns={"category": "label"}).to_csv(tmp_path / "corrections.csv", index=False)
        imported = json.loads(
            llmos("feedback", "import", str(tmp_path / "corrections.csv"), "-d", "bank", "--json")
        )
        assert imported["new_rows"] == len(rows), imported

        # adapt: a job on the server; the gate promotes and the deployment moves
        decided = json.loads(llmos("adapt", "bank", "--epochs", "2", "--cpus", "2", "--json"))
        assert decided["decision"] == "promote", decided
        assert "intents@2" in llmos("deployments", "show", "bank")
        assert "promote" in llmos("adapt", "bank", "--history")

        # the audit log: the token's user did each step; the chain verifies
        events = json.loads(llmos("audit", "list", "--limit", "500", "--json"))
        done = {(e["action"], e["actor"]) for e in events}
        for action in ("dataset.import", "model.register", "deployment.create", "adapt.promote"):
            assert (action, "root") in done, (action, done)
        assert "verified" in llmos("audit", "verify")

        # bad input keeps its local exit codes: unknown model 3, unknown dataset 3
        assert "nope" in llmos("models", "show", "nope", code=3)
        assert "nope" in llmos("data", "show", "nope", code=3)
    finally:
        server.terminate()
        server.wait(30)


def test_the_remote_cli_without_a_server_says_so_in_one_line(tmp_path):
    env = {**os.environ, "LLMOS_URL": "http://127.0.0.1:9", "LLMOS_HOME": str(Path(tmp_path) / "x")}
    done = subprocess.run(
        [sys.executable, "-m", "llmos.cli.main", "models", "list"], capture_output=True, text=True, env=env
    )
    assert done.returncode != 0
    assert "cannot reach the llmos server at http://127.0.0.1:9" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
