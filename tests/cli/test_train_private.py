"""`privacy:` in a spec, end to end: `llmos train` runs DP-SGD, and the accountant's
epsilon is stored on the model version and shown by `llmos models show`."""

import json

from tests.cli.test_cli import write_spec
from tests.conftest import tiny_spec


def test_private_training_reports_epsilon_on_the_model(run, tmp_path, intents_csv, tiny_model_dir):
    run("data", "import", str(intents_csv), "--name", "intents")
    spec = tiny_spec(
        tiny_model_dir,
        method={"type": "lora", "r": 4},
        privacy={"epsilon": 4, "delta": 1e-4},
        train={"epochs": 3, "batch_size": 16, "lr": 2e-2, "head_lr": 5e-2, "seed": 3},
    )
    code, out, err = run("train", str(write_spec(tmp_path, spec)), "--cpus", "1")
    assert code == 0, err
    assert "differential privacy: epsilon" in out
    code, out, _ = run("models", "show", "tiny", "--json")
    info = json.loads(out)
    dp = info["metrics"]["privacy"]
    assert 0 < info["epsilon"] == dp["epsilon"] <= 4 and dp["delta"] == 1e-4
    assert info["spec"]["privacy"]["epsilon"] == 4
    code, out, _ = run("models", "show", "tiny")
    assert f"differential privacy: epsilon {dp['epsilon']} spent of 4" in out
