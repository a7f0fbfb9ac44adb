"""Loaders and chunking: every file kind gives documents with source, title and text;
chunks keep within their size, overlap, and keep position."""

from __future__ import annotations

import itertools
import json
import zipfile

import pytest

from llmos.core.errors import DataError, UsageError
from llmos.knowledge.chunking import chunk_documents, split_text
from llmos.knowledge.loaders import FaqColumns, load_file

from .files import FAQ, GUIDE, PAGE, blank_pdf_bytes, pdf_bytes, write, write_faq


def test_faq_rows_are_whole_documents_keeping_question_and_answer(tmp_path):
    docs = load_file(write_faq(tmp_path))
    assert [d.title for d in docs] == [q for q, _, _ in FAQ]
    assert docs[1].metadata == {"question": FAQ[1][0], "answer": FAQ[1][1], "row": 2, "topic": "cards"}
    assert all(d.kind == "faq" and d.source == "faq.csv" and d.whole for d in docs)
    # JSONL with columns of other names
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a, _ in FAQ))
    docs = load_file(path, faq=FaqColumns("q", "a"))
    assert docs[0].metadata["answer"] == FAQ[0][1] and docs[0].text == f"{FAQ[0][0]}\n{FAQ[0][1]}"
    with pytest.raises(DataError, match=r"qa.jsonl: no 'question' column \(columns: q, a\)"):
        load_file(path)


def test_markdown_html_text_and_pdf(tmp_path):
    (md,) = load_file(write(tmp_path, "guide.md", GUIDE))
    assert (md.title, md.kind) == ("Travel guide", "markdown")
    (html,) = load_file(write(tmp_path, "hours.html", PAGE))
    assert html.title == "Opening hours"
    assert "close at five" in html.text and "tracking" not in html.text and "color" not in html.text
    (txt,) = load_file(write(tmp_path, "notes.txt", "Plain words here."))
    assert (txt.title, txt.text) == ("notes", "Plain words here.")
    (tmp_path / "terms.pdf").write_bytes(pdf_bytes(["Refunds take ten days.", "Fees are listed online."]))
    (pdf,) = load_file(tmp_path / "terms.pdf")
    assert pdf.kind == "pdf" and pdf.metadata == {"page": 1} and "Refunds take ten days" in pdf.text


def test_a_zip_is_read_member_by_member(tmp_path):
    archive = tmp_path / "docs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("guide.md", GUIDE)
        z.writestr("sub/notes.txt", "Some notes.")
    assert [(d.source, d.kind) for d in load_file(archive)] == [
        ("guide.md", "markdown"),
        ("sub/notes.txt", "text"),
    ]


def test_bad_files_name_what_is_wrong(tmp_path):
    with pytest.raises(DataError, match=r"^data.xlsx: unsupported file type '.xlsx'; use one of .csv"):
        load_file(write(tmp_path, "data.xlsx", "x"))
    with pytest.raises(DataError, match=r"^empty.md: the file is empty$"):
        load_file(write(tmp_path, "empty.md", "  \n"))
    (tmp_path / "scan.pdf").write_bytes(blank_pdf_bytes())
    with pytest.raises(DataError, match=r"^scan.pdf: the PDF has no extractable text \(1 pages"):
        load_file(tmp_path / "scan.pdf")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(DataError, match=r"^broken.pdf: cannot read as PDF"):
        load_file(tmp_path / "broken.pdf")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"^latin.txt: not UTF-8 text"):
        load_file(tmp_path / "latin.txt")


def test_chunks_keep_size_overlap_and_position(tmp_path):
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(40)]
    text = " ".join(sentences)
    chunks = split_text(text, size=30, overlap=10)
    assert len(chunks) > 5
    assert all(len(c.split()) <= 30 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        shared = before.split()[-7:]  # the last sentence of a chunk opens the next
        assert after.split()[:7] == shared
    words = " ".join(chunks).split()
    assert set(text.split()) == set(words)  # nothing is lost
    # a sentence longer than the size is cut by words
    assert all(len(c.split()) <= 10 for c in split_text(" ".join(["word"] * 45), size=10, overlap=2))
    docs = load_file(write(tmp_path, "long.txt", text)) + load_file(write_faq(tmp_path))
    chunks_ = chunk_documents(docs, size=30, overlap=10)
    long = [c for c in chunks_ if c.source == "long.txt"]
    assert [c.position for c in long] == list(range(len(long)))
    assert next(c.text for c in chunks_ if c.source == "faq.csv") == f"{FAQ[0][0]} {FAQ[0][1]}"
    with pytest.raises(UsageError, match="chunk overlap must be at least 0 and below the chunk size"):
        chunk_documents(docs, size=30, overlap=30)
