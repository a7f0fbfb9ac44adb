"""`/v1/datasets` over HTTP: a multipart upload streamed to disk under its own size limit,
and every bad upload answered with one line naming the file, nothing stored."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.ops.conftest import stored

LIMIT = 4000


def upload(api, content: bytes, filename: str = "intents.csv", role: str = "admin", **fields: str):
    data = {"name": "intents", **fields}
    return api.post("/v1/datasets", role, files={"file": (filename, content)}, data=data)


def test_upload_list_show_rows(api, intents_csv):
    r = upload(api, intents_csv.read_bytes(), role="developer")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ref"] == "intents@1" and body["created"] and body["rows"] == 150
    assert body["source"] == "intents.csv" and body["labels"] == 3
    again = upload(api, intents_csv.read_bytes(), filename="renamed.csv").json()
    assert again["ref"] == "intents@1" and not again["created"]  # same content, same version

    assert [d["ref"] for d in api.get("/v1/datasets", "viewer").json()] == ["intents@1"]
    assert api.get("/v1/datasets", params={"name": "other"}).json() == []
    shown = api.get("/v1/datasets/intents@1", "viewer").json()
    assert shown["label_distribution"] == {"card": 50, "transfer": 50, "refund": 50}
    rows = api.get("/v1/datasets/intents/rows", params={"limit": 2}).json()
    assert rows["rows"] == pd.read_csv(intents_csv).head(2).to_dict(orient="records")
    assert rows["total"] == 150
    assert api.get("/v1/datasets/intents/rows", params={"limit": 5000}).status_code == 422
    assert api.ws.dataset("intents").rows == 150  # it is the workspace's dataset


def test_pii_and_label_fields(api, tmp_path):
    content = b"msg,tag\nmail jo.doe@example.org now,a\nhello there friend,b\n"
    r = upload(api, content, "tickets.csv", label="tag", pii="redact")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label_column"] == "tag" and body["pii"][0] == {
        "column": "msg",
        "rows": 1,
        "counts": {"EMAIL": 1},
    }
    rows = api.get("/v1/datasets/intents/rows").json()["rows"]
    assert rows[0]["msg"] == "mail [EMAIL] now"


@pytest.mark.parametrize("api", [{"max_upload_bytes": LIMIT}], indirect=True)
@pytest.mark.parametrize(
    ("content", "filename", "fields", "status", "message"),
    [
        (b"", "empty.csv", {}, 422, "empty.csv: the file is empty"),
        (
            b"text,label\n\xffbad,1\n",
            "latin.csv",
            {},
            422,
            "latin.csv: not UTF-8 text (invalid byte at offset",
        ),
        (b"a,b\n1,2\n", "data.xlsx", {}, 422, "data.xlsx: cannot tell the format from the extension '.xlsx'"),
        (b"a,b\n1,2\n", "data.csv", {"format": "xlsx"}, 422, "unknown format 'xlsx'"),
        (b"a,b\n1,2\n", "data.csv", {"label": "y"}, 422, "data.csv: label column 'y' not found"),
        (b"a,b\n1,2\n", "data.csv", {"pii": "maybe"}, 422, "--pii 'maybe' is not a mode"),
        (b"a,b\n1,2\n", "data.csv", {"name": "bad name"}, 422, "invalid dataset name"),
        (b"a,b\n1,2\n", "data.csv", {"name": ""}, 422, "name: required"),
        (b"text,label\n" + b"x" * LIMIT, "big.csv", {}, 413, f"upload limit of {LIMIT} bytes"),
    ],
)
def test_bad_uploads_store_nothing(api, content, filename, fields, status, message):
    before = stored(api.ws.home)
    r = upload(api, content, filename, **fields)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"] and "\n" not in error["message"], error
    assert "llmos-upload-" not in error["message"]  # the server's copy is never named
    assert stored(api.ws.home) == before
    assert api.get("/v1/datasets").json() == []


@pytest.mark.parametrize("api", [{"max_upload_bytes": LIMIT, "max_body_bytes": 100}], indirect=True)
def test_the_limit_holds_without_content_length(api):
    """Over the limit in a chunked body (no Content-Length): refused at the chunk that crosses
    it. An upload under it passes though it is over the JSON routes' body limit."""
    boundary = "xyz"

    def body(size: int):
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'.encode()
        disposition = 'Content-Disposition: form-data; name="file"; filename="b.csv"'
        yield f"--{boundary}\r\n{disposition}\r\n\r\n".encode()
        yield b"text,label\n"
        for _ in range(size // 100):
            yield b"some text here," + b"y" * 84 + b"\n"
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**api.headers["admin"], "Content-Type": f"multipart/form-data; boundary={boundary}"}
    before = stored(api.ws.home)
    r = api.client.post("/v1/datasets", headers=headers, content=body(LIMIT * 3))
    assert r.status_code == 413 and f"limit of {LIMIT} bytes" in r.json()["error"]["message"]
    assert stored(api.ws.home) == before
    r = api.client.post("/v1/datasets", headers=headers, content=body(LIMIT // 2))
    assert r.status_code == 200, r.text
    assert r.json()["ref"] == "big@1"


@pytest.mark.parametrize("api", [{"max_upload_bytes": 1000}], indirect=True)
def test_a_declared_length_over_the_limit_is_refused_before_reading(api):
    content = b"text,label\n" + b"z" * (2**20 + 2000)
    r = upload(api, content, "huge.csv")
    assert r.status_code == 413
    assert r.json()["error"]["message"].startswith("the upload (") and "1000 bytes" in r.text


def test_not_multipart_no_file_and_roles(api, intents_csv):
    r = api.post("/v1/datasets", json={"name": "x"})
    assert r.status_code == 422 and "multipart/form-data with a 'file' field" in r.json()["error"]["message"]
    r = api.post("/v1/datasets", data={"name": "x"}, files={"other": ("a.csv", b"a\n1\n")})
    assert r.status_code == 422 and "has no 'file' field" in r.json()["error"]["message"]
    before = stored(api.ws.home)
    assert upload(api, intents_csv.read_bytes(), role="viewer").status_code == 403
    assert upload(api, intents_csv.read_bytes(), role="none").status_code == 401
    assert upload(api, intents_csv.read_bytes(), role="app").status_code == 403
    assert stored(api.ws.home) == before
    assert api.get("/v1/datasets", "app").status_code == 403
    r = api.get("/v1/datasets/ghost@2", "viewer")
    assert r.status_code == 404 and "dataset 'ghost@2' not found" in r.json()["error"]["message"]
    assert api.get("/v1/datasets/ghost/rows").status_code == 404


def test_upload_to_an_encrypted_workspace_leaves_no_plaintext(ws, intents_csv):
    from fastapi.testclient import TestClient

    from tests.api.conftest import make_api

    ws.enable_encryption()
    app, headers = make_api(ws)
    with TestClient(app) as client:
        files = {"file": ("intents.csv", intents_csv.read_bytes())}
        r = client.post("/v1/datasets", headers=headers["developer"], files=files, data={"name": "i"})
        assert r.status_code == 200, r.text
        rows = client.get("/v1/datasets/i/rows", headers=headers["viewer"], params={"limit": 1}).json()
    first = rows["rows"][0]["text"].encode()
    for path in ws.home.rglob("*"):
        if path.is_file():
            assert first not in path.read_bytes(), path
    assert not list(ws.store.plain_dir(ws.settings.cache_dir / "uploads").glob("*"))
