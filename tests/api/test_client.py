"""`llmos.Client` against a real server: the dataset, spec and registry methods return
what `Workspace` returns, and fail with the same error classes."""

from __future__ import annotations

import pytest

from llmos import Client
from llmos.api.server import ServerThread
from llmos.core.errors import DataError, NotFoundError, SpecError
from llmos.ops.datasets import ImportInfo
from llmos.security.identities import init_admin
from llmos.serve.errors import InputTooLarge, Unauthenticated
from llmos.serve.runtime import ServeConfig
from tests.ops.conftest import PNG, register_fake
from tests.ops.test_specs import BAD, VALID


def same(a, b) -> bool:
    """Equal as JSON (a local result holds the store's naive UTC times, a remote one ISO
    times with their zone)."""
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a.as_json() == b.as_json()


def test_client_matches_the_workspace(ws, intents_csv, tmp_path):
    token, _ = init_admin(ws.store, "root")
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1, max_upload_bytes=100_000)) as url:
        client = Client(url, token=token)
        result = client.import_dataset(intents_csv, "intents")
        assert isinstance(result, ImportInfo) and result.created and result.dataset.ref == "intents@1"
        assert same(client.datasets(), ws.datasets()) and same(
            client.dataset("intents"), ws.dataset("intents")
        )
        assert client.dataset_rows("intents", 4) == ws.dataset_rows("intents", 4)
        register_fake(ws)
        assert same(client.models(), ws.models()) and same(client.model("tiny"), ws.model("tiny"))
        assert client.lineage("tiny") == ws.lineage("tiny") == {"train": "intents@1", "test": None}
        assert client.model_files("tiny") == ws.model_files("tiny")
        assert client.model_file("tiny", "report/confusion_matrix.png") == PNG
        assert client.zoo() == ws.zoo()
        assert client.spec_schema() == ws.spec_schema()
        assert client.check_spec(VALID) == ws.check_spec(VALID)

        with pytest.raises(SpecError) as remote:
            client.check_spec(BAD, "spec.yaml")
        with pytest.raises(SpecError) as local:
            ws.check_spec(BAD, "spec.yaml")
        assert remote.value.problems == local.value.problems and len(local.value.problems) == 3
        assert remote.value.message == local.value.message

        empty = tmp_path / "empty.csv"
        empty.write_bytes(b"")
        with pytest.raises(DataError, match=r"^empty\.csv: the file is empty"):
            client.import_dataset(empty, "e")
        with pytest.raises(NotFoundError, match="no such file"):
            client.import_dataset(tmp_path / "missing.csv", "m")
        with pytest.raises(NotFoundError, match="has no report file"):
            client.model_file("tiny", "../llmos.db")
        big = tmp_path / "big.csv"
        big.write_bytes(b"text,label\n" + b"x,y\n" * 50_000)
        with pytest.raises(InputTooLarge, match="upload limit of 100000 bytes"):
            client.import_dataset(big, "big")
        huge = tmp_path / "huge.csv"
        huge.write_bytes(b"text,label\n" + b"x,y\n" * 600_000)  # over the limit by its Content-Length
        with pytest.raises(InputTooLarge, match="upload limit of 100000 bytes"):
            client.import_dataset(huge, "huge")
        assert [d.ref for d in client.datasets()] == ["intents@1"]
        with pytest.raises(Unauthenticated):
            Client(url, token="llmos_" + "x" * 43).datasets()
