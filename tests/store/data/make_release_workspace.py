"""Build `release-workspace.tar.gz`: a workspace as the release before alembic made it
(schema 7 of the hand-written runner), encrypted, with two datasets, a model, a
deployment with its history, a served request with feedback, and audit events.

Run with the RELEASE's code on the path, not this branch's:
    git archive f8-base src | tar -x -C /tmp/release
    PYTHONPATH=/tmp/release/src python tests/store/data/make_release_workspace.py OUT.tar.gz
"""

import base64
import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

import llmos.store.migrations as legacy
from llmos.core.settings import Settings
from llmos.store import audit
from llmos.store.datasets import import_dataset
from llmos.store.db import Store
from llmos.store.deployments import save_deployment
from llmos.store.feedback import FeedbackEntry, RequestRecord, add_feedback, find_requests, record_requests
from llmos.store.keys import enable_encryption
from llmos.store.models import register_model

assert legacy.LATEST == 7, "run this with the release's code (the hand-written runner)"
KEY = base64.b64encode(bytes(range(32))).decode()

with tempfile.TemporaryDirectory() as tmp:
    home = Path(tmp) / "ws"
    (home).mkdir()
    (home / "master.key").write_text(KEY + "\n")
    (home / "master.key").chmod(0o600)
    plain = Store(Settings.resolve(home))
    enable_encryption(plain)
    plain.close()
    store = Store(Settings.resolve(home))
    csv = Path(tmp) / "intents.csv"
    csv.write_text("text,label\nmy card arrived,card\nsend money abroad,transfer\nrefund please,refund\n")
    train = import_dataset(store, csv, "intents")
    csv.write_text("text,label\nwhere is my card,card\nwire to iban,transfer\n")
    test = import_dataset(store, csv, "intents-test")
    folder = Path(tmp) / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"kind": "classifier", "labels": ["card", "refund", "transfer"]}')
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 64)
    register_model(
        store,
        name="intent",
        task="text-classification",
        base_model="tiny-bert",
        method="lora",
        spec={"task": "text-classification"},
        folder=folder,
        train_dataset_id=train.dataset.id,
        test_dataset_id=test.dataset.id,
        split={"test": "intents-test@1"},
        metrics={"accuracy": 0.75},
        train_seconds=2.5,
    )
    save_deployment(store, "support", "intent@1", "classifier", {"max_batch": 8})
    record_requests(
        store,
        [
            RequestRecord(
                "req-1", 0, "support", "intent@1", {"text": "my card"}, {"label": "card"}, "card", 0.9
            )
        ],
    )
    (served,) = find_requests(store, "req-1")
    add_feedback(store, [FeedbackEntry("support", served=served, label="card", model="intent@1")])
    audit.record(store, "deploy", "support", detail={"model": "intent@1"})
    assert audit.verify(store).ok
    store.close()
    con = sqlite3.connect(home / "llmos.db")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    with tarfile.open(sys.argv[1], "w:gz") as tar:
        tar.add(home, arcname="ws")
