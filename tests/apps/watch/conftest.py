"""A workspace with a tiny sentiment classifier deployed as `senti` (trained once per
session on the synthetic intents: refund texts are `negative`, the others `positive`)."""

from __future__ import annotations

import pytest

from tests.conftest import make_rows, tiny_spec


@pytest.fixture(scope="session")
def senti_home(tmp_path_factory, tiny_model_dir):
    from llmos import Workspace

    home = tmp_path_factory.mktemp("watch") / "ws"
    ws = Workspace(home)
    ws.init()
    rows = make_rows(150)
    rows["label"] = ["negative" if lab == "refund" else "positive" for lab in rows["label"]]
    path = home.parent / "senti.csv"
    rows.to_csv(path, index=False)
    ws.import_dataset(path, "senti")
    spec = tiny_spec(tiny_model_dir, name="senti", data={"train": "senti", "split": {"test": 0.2, "seed": 1}})
    ws.train(spec)
    ws.deploy("senti@1", "senti")
    return home


@pytest.fixture
def senti_ws(senti_home):
    from llmos import Workspace

    return Workspace(senti_home)
