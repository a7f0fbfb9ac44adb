"""End to end with the real packaged MiniLM: import the bundled Banking77 subset, train
with LoRA through the CLI, evaluate, predict. Marked slow; part of `make test`."""

import json

import pytest

from llmos.cli.main import main
from llmos.sdk.demo import demo_files

# `make test` installs the model packages; a missing one fails here rather than hiding.
pytestmark = pytest.mark.slow


def test_minilm_lora_end_to_end(tmp_path, capsys, monkeypatch, threads):
    import pandas as pd

    monkeypatch.setenv("LLMOS_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("LLMOS_KERNEL_IDLE_EXIT", "1")  # `llmos train` starts a kernel on demand
    folder = demo_files()
    # four of the demo intents keep the run short on two cores
    keep = ["card_arrival", "exchange_rate", "change_pin", "age_limit"]
    for split in ("train", "test"):
        frame = pd.read_csv(folder / f"banking_demo_{split}.csv")
        frame[frame.category.isin(keep)].to_csv(tmp_path / f"{split}.csv", index=False)
        assert main(["data", "import", str(tmp_path / f"{split}.csv"), "--name", f"b-{split}"]) == 0
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: e2e\nmodel: minilm\nmethod: lora\n"
        "data: {train: b-train, test: b-test}\n"
        "inputs: [{name: text, max_length: 64}]\noutputs: [{name: category}]\n"
        "train: {epochs: 2, batch_size: 32}\n"
    )
    capsys.readouterr()
    assert main(["train", str(spec), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "e2e@1"
    assert result["metrics"]["accuracy"] >= 0.9, result["metrics"]["accuracy"]
    assert main(["eval", "e2e", "--data", "b-test", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["metrics"]
    assert evaluated["accuracy"] == result["metrics"]["accuracy"]  # one predict path
    assert main(["predict", "e2e", "What is the youngest age to open an account?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "age_limit"
