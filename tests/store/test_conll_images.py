"""Importing token-tagging files (CoNLL, JSONL) and image folders as datasets."""

import json
from pathlib import Path

import pytest

from llmos.core.errors import DataError

CONLL = "Empire\tB-location\nState\tI-location\nis\tO\nbig\tO\n\t\nI\tO\nlove\tO\nAcme\tB-corporation\n"


def test_conll_import_gives_token_and_tag_lists(ws, tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(CONLL)
    ds = ws.import_dataset(path, "ner").dataset
    assert ds.num_rows == 2 and ds.format == "conll"
    frame = ws.dataset_frame("ner")
    assert list(frame["tokens"][0]) == ["Empire", "State", "is", "big"]
    assert list(frame["tags"][1]) == ["O", "O", "B-corporation"]


def test_conll_with_any_extension_via_format(ws, tmp_path):
    path = tmp_path / "test.annotated"
    path.write_text(CONLL)
    assert ws.import_dataset(path, "ner", format="conll").dataset.num_rows == 2


def test_conll_token_without_tag_names_the_line(ws, tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Empire\tB-location\nState\tI-location\n\nI\tO\nlove\nAcme\tB-corporation\n")
    with pytest.raises(DataError, match=r"bad.conll: line 5: one token, no tag \('love'\)"):
        ws.import_dataset(path, "ner")
    assert ws.datasets() == []


def test_conll_tag_outside_bio_names_the_line(ws, tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("Empire\tB-location\nState\tLOC\n")
    with pytest.raises(DataError, match=r"line 2: tag 'LOC' is not BIO"):
        ws.import_dataset(path, "ner")


def test_jsonl_token_rows_import_as_lists(ws, tmp_path):
    path = tmp_path / "ner.jsonl"
    rows = [{"tokens": ["I", "love", "Acme"], "tags": ["O", "O", "B-corporation"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    frame = ws.dataset_frame(ws.import_dataset(path, "ner").dataset.ref)
    assert list(frame["tags"][0]) == ["O", "O", "B-corporation"]


def test_image_folder_import_and_relative_paths_in_tables(ws, tmp_path):
    from PIL import Image

    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / "imgs" / label / f"{i}.png")
    ds = ws.import_dataset(tmp_path / "imgs", "pets").dataset
    assert ds.format == "image-folder" and ds.label_distribution == {"cat": 2, "dog": 2}
    frame = ws.dataset_frame("pets")
    assert frame["image"].map(lambda p: p.startswith("/") and p.endswith(".png")).all()
    again = ws.import_dataset(tmp_path / "imgs", "pets")
    assert not again.created  # same images: same version

    (tmp_path / "list.csv").write_text("image,label\nimgs/cat/0.png,cat\nimgs/dog/1.png,dog\n")
    table = ws.dataset_frame(ws.import_dataset(tmp_path / "list.csv", "pets-list").dataset.ref)
    assert table["image"][0] == str((tmp_path / "imgs/cat/0.png").resolve())


def test_empty_image_folder_is_refused(ws, tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        ws.import_dataset(tmp_path / "empty", "pets")


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "wnut17").exists(), reason="needs ../shared/data/wnut17")
def test_real_wnut17_and_cifar_files_import(ws):
    test = ws.import_dataset(SHARED / "wnut17" / "emerging.test.annotated", "wnut", format="conll")
    assert test.dataset.num_rows == 1287
    frame = ws.dataset_frame("wnut")
    assert all(len(t) == len(g) for t, g in zip(frame["tokens"], frame["tags"]))
    cifar = ws.import_dataset(SHARED / "cifar10-small" / "test", "cifar").dataset
    assert cifar.num_rows == 500 and len(cifar.label_distribution or {}) == 10
