"""Collections through the system calls, the CLI and HTTP: versions, incremental
changes, search, encryption at rest, the PII screen, and bad input (one line, nothing
stored)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from llmos.core.errors import DataError, NotFoundError, UsageError
from llmos.serve.errors import InputTooLarge

from ..conftest import snapshot
from .files import FAQ, GUIDE, PAGE, blank_pdf_bytes, pdf_bytes, write, write_faq


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "terms.pdf").write_bytes(pdf_bytes(["Refunds take ten days.", "Fees are listed online."]))
    return [
        write_faq(folder),
        write(folder, "guide.md", GUIDE),
        write(folder, "hours.html", PAGE),
        folder / "terms.pdf",
    ]


def test_import_search_add_delete_make_versions(ws, docs, tiny_model_dir):
    encoder = str(tiny_model_dir)
    first = ws.import_collection(docs, "help", encoder=encoder, chunk_size=20, chunk_overlap=5)
    assert (first.ref, first.created, first.documents) == ("help@1", True, 4)
    by_source = {d.source: d for d in first.document_list}
    assert by_source["faq.csv"].chunks == len(FAQ) and by_source["guide.md"].title == "Travel guide"
    assert by_source["guide.md"].chunks >= 2  # 20-word chunks of a 40-word guide
    again = ws.import_collection(docs, "help", encoder=encoder, chunk_size=20, chunk_overlap=5)
    assert (again.ref, again.created) == ("help@1", False)

    found = ws.search_collection("help", "how do i reset my password", k=3, mode="bm25")
    top = found.hits[0]
    assert (top.id, top.source, top.kind) == ("faq.csv#0", "faq.csv", "faq")
    assert top.metadata["answer"] == FAQ[0][1]  # the stored answer, verbatim
    hybrid = ws.search_collection("help", "refunds take how long", k=3)
    assert hybrid.mode == "hybrid" and hybrid.fusion == "rrf" and len(hybrid.hits) == 3
    assert "terms.pdf#0" in [h.id for h in hybrid.hits] and hybrid.hits[0].dense_score is not None
    only = ws.search_collection("help", "close", k=10, mode="bm25", filters={"topic": "account"})
    assert {h.metadata["topic"] for h in only.hits} == {"account"}

    smaller = ws.delete_documents("help", ["hours.html"])
    assert (smaller.ref, smaller.parent_version, smaller.documents) == ("help@2", 1, 3)
    assert smaller.change == "delete hours.html"
    notes = write(docs[0].parent, "notes.txt", "Branches open at nine and close at five.")
    grown = ws.add_documents("help", [notes])
    assert (grown.ref, grown.documents, grown.chunks) == ("help@3", 4, smaller.chunks + 1)
    assert ws.search_collection("help", "branches nine", mode="bm25").hits[0].source == "notes.txt"
    assert "hours.html" not in {
        h.source for h in ws.search_collection("help@3", "open close", mode="bm25").hits
    }
    assert (
        ws.search_collection("help@1", "branches open", mode="bm25").hits[0].source == "hours.html"
    )  # immutable
    assert [c.ref for c in ws.collections()] == ["help@1", "help@2", "help@3"]
    assert ws.collection("help").ref == "help@3"


def test_a_bm25_only_collection_and_the_cli_read_the_stored_index(ws, docs, capsys, monkeypatch):
    from llmos.cli.main import main
    from llmos.knowledge import collections

    ws.import_collection(docs, "plain", encoder="none")
    with pytest.raises(UsageError, match=r"collection plain@1 has no dense index .*: use mode bm25"):
        ws.search_collection("plain", "card")
    collections._CACHE.clear()  # as in a new process: the index comes from its stored blobs
    monkeypatch.setenv("LLMOS_HOME", str(ws.home))
    assert main(["kb", "search", "plain", "new card post", "--mode", "bm25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == "faq.csv#1"
    assert main(["kb", "search", "ghost", "hello"]) == 3
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: collection 'ghost' not found (collections: plain); import it with `llmos kb import`"
    ]
    assert main(["kb", "import", str(docs[1]), "--name", "bad", "--chunk-size", "5"]) == 2
    assert "chunk size must be between 10 and 5000 words, not 5" in capsys.readouterr().err


def test_encrypted_workspace_keeps_chunks_and_embeddings_encrypted(tmp_path, docs):
    from llmos import Workspace

    home = tmp_path / "enc"
    ws = Workspace(home)
    ws.init(encrypt=True)
    ws.import_collection(docs, "secret", encoder="none")
    needles = [b"Transfers abroad cost two euros", b"Refunds take ten days", b"close at five"]
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(n in data for n in needles), path
    assert ws.search_collection("secret", "refunds", mode="bm25").hits[0].source == "terms.pdf"


def test_pii_redact_and_reject(ws, tmp_path):
    rows = [("How do I reach you?", "Mail jane.doe@example.com or call the desk.", "contact")]
    path = write_faq(tmp_path, "contact.csv", rows)
    result = ws.import_collection([path], "contact", encoder="none", pii="redact")
    assert result.pii and sum(c.counts.get("EMAIL", 0) for c in result.pii) >= 1
    hit = ws.search_collection("contact", "reach you", mode="bm25").hits[0]
    assert "jane.doe@example.com" not in hit.text and "jane.doe" not in hit.metadata["answer"]
    before = snapshot(ws.home)
    with pytest.raises(DataError, match="holds PII"):
        ws.import_collection([path], "contact2", encoder="none", pii="reject")
    assert snapshot(ws.home) == before


def test_bad_input_is_one_line_and_stores_nothing(ws, tmp_path):
    empty = write(tmp_path, "empty.md", "")
    sheet = write(tmp_path, "data.xlsx", "x")
    (tmp_path / "scan.pdf").write_bytes(blank_pdf_bytes())
    guide = write(tmp_path, "guide.md", GUIDE)
    before = snapshot(ws.home)
    cases = [
        ([empty], DataError, r"^empty.md: the file is empty$"),
        ([guide, sheet], DataError, r"^data.xlsx: unsupported file type '.xlsx'"),
        ([tmp_path / "scan.pdf"], DataError, r"^scan.pdf: the PDF has no extractable text"),
        ([tmp_path / "nope.md"], NotFoundError, r"nope.md: no such file"),
    ]
    for paths, error, message in cases:
        with pytest.raises(error, match=message):
            ws.import_collection(paths, "kb", encoder="none")
    with pytest.raises(NotFoundError, match=r"^collection 'kb' not found \(collections: none yet\)"):
        ws.search_collection("kb", "hello")
    assert snapshot(ws.home) == before
    ws.import_collection([guide], "kb", encoder="none")
    before = snapshot(ws.home)
    with pytest.raises(InputTooLarge, match=r"^query: 2001 characters, over the limit of 2000$"):
        ws.search_collection("kb", "x" * 2001)
    with pytest.raises(UsageError, match=r"would leave collection kb@1 empty"):
        ws.delete_documents("kb", ["guide.md"])
    with pytest.raises(NotFoundError, match=r"collection kb@1 has no document 'other.md'"):
        ws.delete_documents("kb", ["other.md"])
    with pytest.raises(DataError, match=r"^empty.md: the file is empty$"):
        ws.add_documents("kb", [empty])
    assert snapshot(ws.home) == before


def test_http_routes_and_cli_exit_codes(ws, docs, tmp_path):
    from llmos.api.app import create_app
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    app = create_app(ServeRuntime(ws.store, ServeConfig(max_wait_ms=1)), open_policy())
    with TestClient(app) as client:
        faq = docs[0]
        r = client.post(
            "/v1/knowledge",
            files={"file": ("faq.csv", faq.read_bytes())},
            data={"name": "web", "encoder": "none"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["ref"] == "web@1" and r.json()["document_list"][0]["source"] == "faq.csv"
        r = client.post("/v1/knowledge/web/search", json={"query": "new card", "mode": "bm25", "k": 2})
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "faq.csv#1"
        r = client.post("/v1/knowledge/web/search", json={"query": "q" * 3000, "mode": "bm25"})
        assert r.status_code == 413 and "over the limit of 2000" in r.json()["error"]["message"]
        assert client.post("/v1/knowledge/ghost/search", json={"query": "hi"}).status_code == 404
        r = client.post("/v1/knowledge", files={"file": ("a.docx", b"x")}, data={"name": "web"})
        assert r.status_code == 422 and r.json()["error"]["message"].startswith(
            "a.docx: unsupported file type"
        )
        r = client.post(
            "/v1/knowledge/documents", files={"file": ("guide.md", GUIDE.encode())}, data={"name": "web"}
        )
        assert r.status_code == 200 and r.json()["ref"] == "web@2"
        r = client.delete("/v1/knowledge/web/documents", params={"source": "guide.md"})
        assert r.status_code == 200 and r.json()["documents"] == 1
        assert [c["ref"] for c in client.get("/v1/knowledge").json()] == ["web@1", "web@2", "web@3"]


def test_client_sends_several_files_as_one_upload_with_the_same_result(ws, docs):
    from llmos import Client
    from llmos.api.server import ServerThread
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig

    local = ws.import_collection(docs[:2], "local", encoder="none")
    with ServerThread(ws.store, ServeConfig(max_wait_ms=1), policy=open_policy()) as url:
        client = Client(url)
        remote = client.import_collection(docs[:2], "remote", encoder="none")
        assert [d.source for d in remote.document_list] == [d.source for d in local.document_list]
        assert remote.chunks == local.chunks
        query = "paying by card abroad"
        got = client.search_collection("remote", query, mode="bm25", k=3)
        assert [h.id for h in got.hits] == [
            h.id for h in ws.search_collection("local", query, mode="bm25", k=3).hits
        ]
        grown = client.add_documents("remote", [docs[2]])
        assert grown.documents == 3
        assert client.delete_documents("remote", ["hours.html", "guide.md"]).documents == 1
        assert [c.ref for c in client.collections("remote")] == ["remote@1", "remote@2", "remote@3"]
        with pytest.raises(NotFoundError, match="collection 'ghost' not found"):
            client.collection("ghost")


def test_minilm_finds_a_paraphrase_bm25_cannot(ws, tmp_path, threads):
    rows = [*FAQ, ("Is there an app for my phone?", "Yes, for Android and iOS.", "app")]
    path = write_faq(tmp_path, "faq.csv", rows)
    ws.import_collection([path], "mini")  # the packaged all-MiniLM-L6-v2
    query = "my plastic hasn't turned up in the letterbox yet"  # no word (or stem) in common
    assert ws.search_collection("mini", query, mode="dense", k=1).hits[0].id == "faq.csv#1"
    assert ws.search_collection("mini", query, k=1).hits[0].id == "faq.csv#1"
    bm25 = ws.search_collection("mini", query, mode="bm25", k=5).hits
    assert "faq.csv#1" not in [h.id for h in bm25]  # no word in common
