"""Drift detection on real data: a MiniLM classifier trained on nine Banking77 intents is
served; a window of held-out texts of those intents raises no alarm, a window of the
three withheld intents does. Marked slow (real MiniLM; one epoch of a frozen encoder
is enough, as drift is measured on the inputs): 87 s on two cores shared with other work."""

from __future__ import annotations

import pandas as pd
import pytest

from llmos import Client
from llmos.adapt.monitor import drift_report
from llmos.api.server import ServerThread
from llmos.sdk.demo import demo_files
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig

pytestmark = pytest.mark.slow


def test_withheld_intents_raise_a_drift_alarm_and_held_out_texts_do_not(ws, tmp_path, threads):
    folder = demo_files()
    train = pd.read_csv(folder / "banking_demo_train.csv")
    test = pd.read_csv(folder / "banking_demo_test.csv")
    intents = sorted(train["category"].unique())
    known, withheld = intents[:9], intents[9:]
    train[train["category"].isin(known)].groupby("category").head(20).to_csv(tmp_path / "k.csv", index=False)
    ws.import_dataset(tmp_path / "k.csv", "known")
    ws.train(
        {
            "name": "bank",
            "model": "minilm",
            "method": "frozen",
            "data": {"train": "known", "split": {"test": 0.2, "seed": 1}},
            "inputs": [{"name": "text", "max_length": 32}],
            "outputs": [{"name": "category"}],
            "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, "head_lr": 5e-2, "seed": 0},
        }
    )
    ws.deploy("bank@1", "bank")
    same = test[test["category"].isin(known)].sample(80, random_state=0)
    new = pd.concat([test, train])[lambda f: f["category"].isin(withheld)].sample(80, random_state=0)
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        client.predict("bank", same["text"].tolist())
        client.predict("bank", new["text"].tolist())
    report = drift_report(ws.store, "bank", window=80, permutations=200)
    held_out, shifted = report.windows
    assert report.reference == "known@1" and report.reference_rows == 144 and report.heldout_rows == 36
    assert held_out.drift_p > 0.05 and held_out.auc < 0.75 and held_out.alerts == []
    assert shifted.drift_p < 0.01 and shifted.auc > 0.9
    assert {"drift", "labels"} <= set(shifted.alerts)
    assert report.drifted
