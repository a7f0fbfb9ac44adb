"""Monitoring: the statistics on samples with and without a shift, and `llmos monitor` on
a tiny served classifier (windows, alerts fired once, the webhook, the chart, --json)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from llmos import Client
from llmos.adapt.monitor import Thresholds, drift_report, label_shift, mmd_test, post_webhook
from llmos.api.server import ServerThread
from llmos.cli.main import main
from llmos.core.errors import UsageError
from llmos.security.policy import open_policy
from llmos.serve.runtime import ServeConfig
from llmos.store.alerts import list_alerts
from tests.conftest import make_rows
from tests.serve.conftest import lora_spec


@pytest.fixture
def lora_ws(ws, intents_csv, tiny_model_dir):
    """A workspace with a LoRA classifier on the tiny BERT, trained on the synthetic intents."""
    ws.import_dataset(intents_csv, "intents")
    ws.train(lora_spec(tiny_model_dir))
    return ws


def test_mmd_permutation_test_is_calibrated_and_separates_shifted_samples():
    """Same distribution: p-values spread over (0, 1], rarely below 0.05; shifted: all tiny."""
    same_p, shifted_p = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(150, 8))
        stat_same, p = mmd_test(x, rng.normal(size=(80, 8)), 200, seed)
        same_p.append(p)
        stat_shift, p = mmd_test(x, rng.normal(size=(80, 8)) + np.r_[1.2, np.zeros(7)], 200, seed)
        shifted_p.append(p)
        assert stat_shift > stat_same
    assert np.mean(np.array(same_p) < 0.05) <= 0.2 and 0.2 < np.median(same_p) < 0.8
    assert max(shifted_p) < 0.01


def test_label_shift_psi_and_chi_square():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    psi_same, p_same = label_shift(ref, pd.Series(["a"] * 24 + ["b"] * 26))
    psi_new, p_new = label_shift(ref, pd.Series(["a"] * 45 + ["b"] * 5))
    assert psi_same < 0.05 < 0.25 < psi_new
    assert p_same > 0.5 and p_new < 1e-6


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_monitor_windows_alerts_webhook_chart_and_cli(lora_ws, tiny_model_dir, tmp_path, capsys):
    ws = lora_ws
    ws.deploy("lora0@1", "bank")
    # the tiny model is a poor classifier (one epoch): its feedback accuracy is no news here
    thresholds = Thresholds(min_accuracy=0.3)
    options = {"embedder": str(tiny_model_dir), "permutations": 100, "reference_size": 120}
    options |= {"thresholds": thresholds}
    empty = drift_report(ws.store, "bank", window=40, **options)
    assert empty.windows == [] and "0 requests served by lora0@1" in empty.note and not empty.drifted
    in_dist = make_rows(80, seed=5)
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        rows = client.predict("bank", in_dist["text"].tolist())
        for row, label in list(zip(rows, in_dist["label"]))[:25]:
            client.submit_feedback("bank", row["request_id"], index=row["index"], label=label)
        # words the model never saw ([UNK] to its tokenizer): traffic unlike the training data
        client.predict("bank", [f"zorp{i} quux blarg frobnicate" for i in range(40)])
        client.predict("bank", ["card arrived"] * 15)  # a partial window
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    try:
        report = drift_report(ws.store, "bank", window=40, fire=True, webhook=hook, **options)
        again = drift_report(ws.store, "bank", window=40, fire=True, webhook=hook, **options)
    finally:
        server.shutdown()
    assert [(w.size, w.full) for w in report.windows] == [(40, True), (40, True), (40, True), (15, False)]
    first, second, drifted, partial = report.windows
    assert first.alerts == [] and second.alerts == []
    assert first.feedback == 25 and first.accuracy is not None
    assert "drift" in drifted.alerts and drifted.drift_p < 0.01 < first.drift_p
    assert drifted.auc > 0.9 and partial.last_id == 135  # reported, but alerts wait for a full window
    assert report.drifted and report.latest is drifted
    assert {a["check"] for a in report.alerts} >= {"drift"} and all(
        a["window_end"] == 120 for a in report.alerts
    )
    assert again.alerts == []  # each alert fires once
    recent = drift_report(ws.store, "bank", window=40, last=2, **options)  # reads only those rows
    assert [(w.index, w.first_id, w.size) for w in recent.windows] == [(2, 81, 40), (3, 121, 15)]
    assert len(_Hook.received) == 1 and _Hook.received[0]["alerts"][0]["deployment"] == "bank"
    assert [a.check for a in list_alerts(ws.store, "bank")] == [a["check"] for a in report.alerts]

    png = tmp_path / "monitor.png"
    argv = ["--home", str(ws.home), "monitor", "bank", "--window", "40", "--min-accuracy", "0.3"]
    argv += ["--embedder", str(tiny_model_dir)]
    assert main([*argv, "--png", str(png), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["drifted"] is True and len(shown["windows"]) == 4 and shown["alerts"] == []
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 0
    assert "drifted: yes" in capsys.readouterr().out


def test_monitor_bad_input(lora_ws, tiny_lm_dir):
    ws = lora_ws
    with pytest.raises(Exception, match="deployment 'nope' not found"):
        drift_report(ws.store, "nope")
    ws.deploy("lora0@1", "bank")
    with pytest.raises(UsageError, match="--window 3 is too small"):
        drift_report(ws.store, "bank", window=3)
    ws.deploy(str(tiny_lm_dir), "chat")
    with pytest.raises(UsageError, match="serves a generation model; monitoring covers classifiers"):
        drift_report(ws.store, "chat")
    assert not post_webhook("http://127.0.0.1:9/nothing-listens", {"x": 1}, timeout=0.5)
    assert Thresholds().psi == 0.25
