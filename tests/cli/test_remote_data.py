"""`llmos --url URL --token T` for datasets, specs and the registry: the same output,
`--json` and exit codes as the same verbs on the workspace itself."""

from __future__ import annotations

import json

import pytest

from llmos.api.server import ServerThread
from llmos.security.identities import add_user, create_token, init_admin
from llmos.serve.runtime import ServeConfig
from tests.cli.test_cli import write_spec
from tests.ops.conftest import PNG, register_fake, stored
from tests.ops.test_specs import BAD, VALID


@pytest.fixture
def remote(ws, run):
    token, _ = init_admin(ws.store, "root")
    add_user(ws.store, "viv", "viewer")
    viewer = create_token(ws.store, "viv")[0]
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1)) as url:

        def call(*args: str, token: str = token) -> tuple[int, str, str]:
            return run("--url", url, "--token", token, *args)

        call.viewer = viewer  # type: ignore[attr-defined]
        yield call


def test_data_import_and_show_remotely(ws, run, remote, intents_csv, tmp_path):
    code, out, err = remote("data", "import", str(intents_csv), "--name", "intents")
    assert code == 0, err
    assert out.strip() == "imported intents@1: 150 rows, 2 columns, label 'label' with 3 values"
    assert ws.dataset("intents").source == "intents.csv"  # the upload's own name
    for args in (
        ["data", "show", "intents", "--rows", "3"],
        ["data", "list"],
        ["data", "show", "intents", "--json"],
    ):
        local, there = run(*args), remote(*args)
        assert local == there and local[0] == 0, args
    head = json.loads(remote("data", "show", "intents", "--json")[1])["head"]
    assert len(head) == 5 and set(head[0]) == {"text", "label"}

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    before = stored(ws.home)
    local, there = (
        run("data", "import", str(empty), "--name", "e"),
        remote("data", "import", str(empty), "--name", "e"),
    )
    assert local[0] == there[0] == 4
    assert "empty.csv: the file is empty" in there[2] and "Traceback" not in there[2]
    assert run("data", "show", "ghost")[0] == remote("data", "show", "ghost")[0] == 3
    assert remote("data", "import", str(intents_csv), "--name", "v", token=remote.viewer)[0] == 10
    assert stored(ws.home) == before


def test_spec_check_remotely_same_exit_codes(run, remote, tmp_path):
    bad, good = write_spec(tmp_path, BAD), tmp_path / "good.yaml"
    good.write_text(json.dumps(VALID))
    for args in (["spec", "check", str(bad)], ["spec", "check", str(bad), "--json"]):
        local, there = run(*args), remote(*args)
        assert local == there and local[0] == 5, (local, there)
    assert "train.lr: must be > 0" in there[1] and "train.extra: unknown key" in there[1]
    local, there = run("spec", "check", str(good)), remote("spec", "check", str(good))
    assert local == there and local[0] == 0 and "valid (text-classification, minilm + lora)" in local[1]
    assert "data.train: dataset 'intents' not found" in there[2]
    assert run("spec", "schema") == remote("spec", "schema")
    assert (
        run("spec", "check", str(tmp_path / "none.yaml"))[0]
        == remote("spec", "check", str(tmp_path / "none.yaml"))[0]
        == 3
    )


def test_models_remotely(ws, run, remote, intents_csv, tmp_path):
    ws.import_dataset(intents_csv, "intents")
    register_fake(ws)
    for args in (["models", "list"], ["models", "show", "tiny"], ["models", "show", "tiny", "--json"],
                 ["models", "files", "tiny"], ["models", "zoo", "--json"]):  # fmt: skip
        local, there = run(*args), remote(*args)
        assert local == there and local[0] == 0, args
    assert "trained on intents@1" in remote("models", "show", "tiny")[1]
    target = tmp_path / "cm.png"
    code, out, err = remote("models", "download", "tiny", "report/confusion_matrix.png", "--out", str(target))
    assert code == 0, err
    assert target.read_bytes() == PNG and f"wrote {target}" in out
    assert run("models", "download", "tiny", "model.safetensors", "--out", str(tmp_path / "w"))[0] == 3
    assert remote("models", "download", "tiny", "model.safetensors", "--out", str(tmp_path / "w"))[0] == 3
    assert not (tmp_path / "w").exists()
