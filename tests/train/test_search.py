"""`search:` in a spec: bad search spaces are refused with the field named; a search runs
its trials through the one loop and registers the best with the trial table; a search
process SIGKILLed mid-trial resumes, when the spec is trained again, without rerunning its
finished trials."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from llmos.core.errors import SpecError
from llmos.core.progress import SilentProgress
from llmos.spec import parse_spec
from tests.conftest import make_rows, tiny_spec

SPACE = {"train.lr": {"low": 1e-4, "high": 1e-2, "log": True}, "train.batch_size": {"choices": [8, 16]}}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"train.lr": {"low": 0.01, "high": 0.001}},
            "search.space.train.lr: empty range (low 0.01 is not below high 0.001)",
        ),
        (
            {"train.lrr": {"low": 0.001, "high": 0.01}},
            "search.space.train.lrr: unknown field; searchable fields are ",
        ),
        ({"method.r": {"choices": []}}, "search.space.method.r: empty choices"),
        ({"train.lr": {"low": 0.001}}, "search.space.train.lr: give low and high, or choices"),
    ],
)
def test_bad_search_space_is_named(tiny_model_dir, space, message):
    spec = tiny_spec(tiny_model_dir, method="lora", search={"space": space})
    with pytest.raises(SpecError, match=r"^spec: 1 problem: \(spec\): " + re.escape(message)):
        parse_spec(spec)


def test_search_registers_the_best_trial_with_every_trial_recorded(ws, tmp_path, tiny_model_dir):
    path = tmp_path / "rows.csv"
    make_rows(120).to_csv(path, index=False)
    ws.import_dataset(path, "intents")
    search = {"space": SPACE, "trials": 3, "scheduler": "fifo", "sampler": "random"}
    spec = tiny_spec(tiny_model_dir, train={"epochs": 1, "seed": 3}, search=search)
    outcome = ws.train(spec)
    found = outcome.model.metrics["search"]
    trials = found["trials"]
    assert [t["trial"] for t in trials] == [0, 1, 2]
    assert all(t["state"] == "finished" and t["epochs"] == 1 for t in trials)
    assert len({t["params"]["train.lr"] for t in trials}) == 3
    best = max(trials, key=lambda t: t["score"])
    assert found["best_trial"] == best["trial"]
    registered = outcome.model.spec
    assert registered["train"]["lr"] == best["params"]["train.lr"]
    assert registered["train"]["batch_size"] == best["params"]["train.batch_size"]
    assert registered["search"]["trials"] == 3
    assert not (ws.home / "searches").exists() or not any((ws.home / "searches").iterdir())


KILLED_RUN = """
import json, sys
from llmos import Workspace
from llmos.core.progress import SilentProgress

class Lines(SilentProgress):
    def log(self, message):
        print(message, flush=True)

Workspace(sys.argv[1]).train(json.loads(sys.argv[2]), Lines())
"""


class Lines(SilentProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def test_killed_search_resumes_without_rerunning_finished_trials(ws, tmp_path, tiny_model_dir):
    """A search process SIGKILLed during its second trial; the same spec trained again
    keeps the finished trial, reruns the interrupted trial's values and registers once."""
    path = tmp_path / "rows.csv"
    make_rows(240).to_csv(path, index=False)
    ws.import_dataset(path, "intents")
    search = {"space": SPACE, "trials": 3, "scheduler": "fifo"}
    spec = tiny_spec(tiny_model_dir, train={"epochs": 2, "seed": 3}, search=search)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(ws.home), json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    first: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        first.append(line.strip())
        if line.startswith("  trial 1: epoch 1"):  # trial 0 finished, trial 1 under way
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, first
    assert "trial 0: validation accuracy" in " ".join(first)
    assert ws.models() == []

    lines = Lines()
    outcome = ws.train(spec, lines)
    assert "resuming the search of tiny: 1 of 3 trials kept" in lines.lines
    assert not any(line.startswith("trial 0 (") for line in lines.lines)  # not run again
    trials = outcome.model.metrics["search"]["trials"]
    states = {t["trial"]: t["state"] for t in trials}
    assert states == {0: "finished", 1: "interrupted", 2: "finished", 3: "finished"}
    by_number = {t["trial"]: t for t in trials}
    assert by_number[2]["params"] == by_number[1]["params"]  # the interrupted values ran again
    assert [m.ref for m in ws.models()] == ["tiny@1"]
