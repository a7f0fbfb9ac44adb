"""A workspace shared by the support tests (trained once for the package): a tiny intent
classifier over card / transfer / refund questions deployed as `intents`, and a FAQ
collection (BM25 only, so no encoder runs)."""

from __future__ import annotations

import pytest

from llmos import Workspace
from tests.conftest import make_rows

FAQ = [
    ("when will my new card arrive", "Cards arrive within 5 working days of your order."),
    ("how do i send a transfer to another account", "Open Payments, choose Transfer and enter the IBAN."),
    (
        "how do i get a refund from a merchant",
        "Ask the merchant first; if they refuse, open a dispute.",
    ),
]


@pytest.fixture(scope="package")
def desk(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("support")
    ws = Workspace(root / "ws")
    ws.init()
    make_rows(150).to_csv(root / "intents.csv", index=False)
    ws.import_dataset(root / "intents.csv", "intents")
    spec = {
        "name": "intent-model",
        "model": str(tiny_model_dir),
        "method": "full",
        "data": {"train": "intents"},
        "inputs": [{"name": "text", "max_length": 32}],
        "outputs": [{"name": "label"}],
        "train": {"epochs": 8, "batch_size": 16, "lr": 3e-3, "head_lr": 1e-2, "seed": 3, "warmup": 0.0},
    }
    ws.train(spec)
    ws.deploy("intent-model", "intents")
    faq = root / "faq.csv"
    faq.write_text("question,answer\n" + "".join(f'"{q}","{a}"\n' for q, a in FAQ))
    ws.import_collection([faq], "faq", encoder="none")
    base = {"intents": "intents", "collection": "faq", "search_mode": "bm25", "confidence_threshold": 0.4}
    ws.support_create("desk", base)
    return ws
