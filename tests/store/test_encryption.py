"""Encryption at rest: no dataset text anywhere under LLMOS_HOME while training, batch
prediction, serving and key rotation still work; loose key files, corrupted or swapped
ciphertext and interrupted rotations are refused or survived with one clear message."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from llmos import Workspace
from llmos.cli.main import main
from llmos.core.errors import StoreError, UsageError
from llmos.store import crypto
from tests.conftest import make_rows, tiny_spec
from tests.kernel.helpers import run_until_idle


def known_strings(csv: Path, n: int = 20) -> list[str]:
    """`n` distinct full row texts of the dataset (long enough not to occur by chance)."""
    import pandas as pd

    texts = pd.read_csv(csv)["text"].drop_duplicates()
    chosen = [t for t in texts if len(t.split()) >= 5 and '"' not in t][:n]
    assert len(chosen) == n
    return chosen


def readable(path: Path) -> bytes:
    """A file's bytes, followed by its decoded table when it is a (compressed) Parquet
    file: Parquet pages are compressed, so a byte search alone would miss a plain copy."""
    import pandas as pd

    data = path.read_bytes()
    if data[:4] == b"PAR1":
        data += pd.read_parquet(io.BytesIO(data)).to_csv().encode()
    return data


def plaintext_hits(home: Path, strings: list[str]) -> list[tuple[str, str]]:
    """(file, string) for every known string found in any file under `home`, the
    database, its write-ahead log and the key file included."""
    hits = []
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "llmos.db" for p in files)
    for path in files:
        data = readable(path)
        hits += [(str(path.relative_to(home)), s) for s in strings if s.encode() in data]
    return hits


def serve_predict(home: Path, deployment: str, texts: list[str]) -> list[dict[str, object]]:
    """One predict call through the HTTP app of a fresh workspace object (a new process's
    view), and feedback on its first answer: the served texts land in the request log."""
    from fastapi.testclient import TestClient

    from llmos.api.app import create_app
    from llmos.security.policy import open_policy
    from llmos.serve.runtime import ServeConfig, ServeRuntime

    runtime = ServeRuntime(Workspace(home).store, ServeConfig(max_wait_ms=1))
    with TestClient(create_app(runtime, open_policy())) as client:
        reply = client.post(f"/v1/deployments/{deployment}/predict", json={"inputs": texts})
        assert reply.status_code == 200, reply.text
        first = reply.json()["predictions"][0]
        feedback = {"request_id": first["request_id"], "index": 0, "label": first["label"]}
        answer = client.post(f"/v1/deployments/{deployment}/feedback", json=feedback)
        assert answer.status_code == 201, answer.text
    return reply.json()["predictions"]


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    path = tmp_path / "intents.csv"
    make_rows(150).to_csv(path, index=False)
    return path


BANKING = Path(__file__).resolve().parents[2] / "src" / "llmos" / "demo" / "banking_demo_train.csv"


def test_nothing_of_the_dataset_is_stored_in_the_clear(tmp_path, big_csv, tiny_model_dir):
    strings = known_strings(BANKING)  # real customer messages (Banking77), predicted below
    synthetic = known_strings(big_csv)  # the rows the tiny model trains on
    plain = Workspace(tmp_path / "plain")  # the control: without encryption the search finds them
    plain.init()
    plain.import_dataset(big_csv, "intents")
    plain.import_dataset(BANKING, "bank")
    assert len({s for _, s in plaintext_hits(plain.home, strings + synthetic)}) == 40

    home = tmp_path / "enc"
    ws = Workspace(home)
    ws.init(encrypt=True)
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    ws.import_dataset(big_csv, "intents")
    assert ws.dataset_frame("intents")["text"].tolist()[:3] == make_rows(150)["text"].tolist()[:3]
    first = ws.train(tiny_spec(tiny_model_dir))
    assert first.metrics["accuracy"] > 0.5
    assert not first.report_dir.is_relative_to(home)  # decrypted outside the workspace
    ws.import_dataset(BANKING, "bank")
    job = ws.submit_predict("tiny", "intents", start_kernel=False)  # in a worker process
    bank_job = ws.submit_predict("tiny", "bank", start_kernel=False)
    run_until_idle(ws.store, 1, timeout=240)
    assert ws.job(job.id).state == ws.job(bank_job.id).state == "succeeded", ws.job_log(bank_job.id)
    assert set(strings) <= set(ws.prediction_frame("tiny-on-bank")["text"])
    predicted = ws.prediction_frame("tiny-on-intents@1")
    assert predicted["text"].tolist() == make_rows(150)["text"].tolist()
    ws.deploy("tiny", "intents")
    before = serve_predict(home, "intents", strings[:4])
    assert [r["label"] for r in before] == [r["label"] for r in ws.predict("tiny", strings[:4])]

    old_key = (home / "master.key").read_bytes()
    rotated = ws.rotate_key()
    assert rotated["rewrapped"] == rotated["data_keys"] >= 10
    assert (home / "master.key").read_bytes() != old_key
    assert sorted(p.name for p in home.glob("master.key*")) == ["master.key"]
    assert rotated["data_keys_by_master_key"] == {rotated["key_id"]: rotated["data_keys"]}

    ws2 = Workspace(home)  # reopens with the new key file
    assert ws2.dataset_frame("intents")["text"].tolist() == make_rows(150)["text"].tolist()
    second = ws2.train(tiny_spec(tiny_model_dir))
    assert second.model.ref == "tiny@2"
    ws2.deploy("tiny@1", "intents")
    after = serve_predict(home, "intents", strings[:4])
    assert [r["label"] for r in after] == [r["label"] for r in before]
    assert (
        ws2.prediction_frame("tiny-on-intents@1")["prediction"].tolist() == predicted["prediction"].tolist()
    )

    assert ws2.encryption_status()["blobs_plaintext"] == 0
    served = ws2.store.engine.connect().exec_driver_sql("SELECT inputs FROM served_requests").all()
    assert len(served) == 8 and all(row[0].startswith("llmos-sealed:") for row in served)
    assert plaintext_hits(home, strings + synthetic) == []


@pytest.mark.local_only
def test_keys_enable_encrypts_an_existing_workspace(ws, big_csv, tiny_model_dir, capsys):
    strings = known_strings(big_csv)
    ws.import_dataset(big_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1, "batch_size": 16, "seed": 7}))
    ws.model_path("tiny")  # hard links to the plaintext blobs in the cache
    assert plaintext_hits(ws.home, strings)
    home = ["--home", str(ws.home)]
    assert main([*home, "keys", "status"]) == 0
    assert "encryption at rest: off" in capsys.readouterr().out
    assert main([*home, "keys", "enable"]) == 0
    captured = capsys.readouterr()
    assert "created master key file" in captured.err and "0 of them still plaintext" in captured.out
    assert plaintext_hits(ws.home, strings) == []
    reopened = Workspace(ws.home)
    assert reopened.dataset("intents").label_distribution == {"card": 50, "transfer": 50, "refund": 50}
    assert reopened.predict("tiny", strings[:2])[0]["label"] in {"card", "transfer", "refund"}
    assert main([*home, "keys", "enable", "--json"]) == 0  # idempotent
    assert '"blobs_encrypted_now": 0' in capsys.readouterr().out


@pytest.mark.local_only
def test_label_lists_are_sealed_in_the_database(ws, big_csv):
    import sqlite3

    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    con = sqlite3.connect(ws.home / "llmos.db")
    raw = con.execute("select label_distribution from dataset_versions").fetchone()[0]
    con.close()
    assert raw.startswith('"' + crypto.SEALED_PREFIX) and "transfer" not in raw
    assert ws.dataset("intents").label_distribution == {"card": 50, "transfer": 50, "refund": 50}


def test_a_loose_key_file_stops_every_command_with_one_line(ws, big_csv, capsys):
    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    key = ws.home / "master.key"
    key.chmod(0o644)
    assert main(["--home", str(ws.home), "data", "list"]) == StoreError.exit_code
    message = capsys.readouterr().err.strip()
    assert (
        message
        == f"error: master key file {key} has permissions 0644, open to other users: run `chmod 600 {key}`"
    )
    key.chmod(0o600)
    assert main(["--home", str(ws.home), "data", "list"]) == 0


def test_missing_or_wrong_master_key_is_named(ws, big_csv, monkeypatch):
    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    key_id = ws.encryption_status()["key_id"]
    monkeypatch.setenv(crypto.ENV_KEY, "AAAA")
    with pytest.raises(StoreError, match="LLMOS_MASTER_KEY: not a master key"):
        Workspace(ws.home).datasets()
    other = crypto.new_key()
    import base64

    monkeypatch.setenv(crypto.ENV_KEY, base64.b64encode(other).decode())
    with pytest.raises(StoreError, match=f"encrypted under key {key_id}: set it to"):
        Workspace(ws.home).datasets()
    monkeypatch.delenv(crypto.ENV_KEY)
    (ws.home / "master.key").rename(ws.home / "elsewhere.key")
    with pytest.raises(StoreError, match=r"its master key file .*master.key is missing"):
        Workspace(ws.home).datasets()
    monkeypatch.setenv(crypto.ENV_KEY_FILE, str(ws.home / "elsewhere.key"))
    assert [d.ref for d in Workspace(ws.home).datasets()] == ["intents@1"]


def test_a_corrupted_blob_is_an_integrity_error_and_nothing_is_overwritten(ws, big_csv, tiny_model_dir):
    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    ws.train(tiny_spec(tiny_model_dir, train={"epochs": 1, "batch_size": 16, "seed": 7}))
    ds = ws.dataset("intents")
    blob = ws.store.artifacts.path(ds.artifact)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(
        StoreError, match=rf"artifact {ds.artifact[:12]} \(dataset intents@1\): integrity check failed"
    ):
        ws.dataset_frame("intents")
    assert blob.read_bytes() == bytes(data)  # left as it is
    # a model file: the folder gets no partial or corrupt file
    model = ws.model("tiny")
    rel, digest = next((r, d) for r, d in model.artifacts.items() if r.endswith(".safetensors"))
    path = ws.store.artifacts.path(digest)
    good = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    dest = ws.store.plain_dir(ws.home / "cache" / "check")
    with pytest.raises(StoreError, match=rf"artifact {digest[:12]} \({rel}\): integrity check failed"):
        ws.store.artifacts.materialize({rel: digest}, dest)
    assert [p for p in dest.rglob("*") if p.is_file()] == []


def test_a_blob_swapped_for_another_does_not_open(ws, big_csv, tmp_path):
    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    other = tmp_path / "other.csv"
    make_rows(40, seed=3).to_csv(other, index=False)
    ws.import_dataset(other, "other")
    a, b = (ws.store.artifacts.path(ws.dataset(n).artifact) for n in ("intents", "other"))
    b.chmod(0o644)
    b.write_bytes(a.read_bytes())
    with pytest.raises(StoreError, match=r"\(dataset other@1\): integrity check failed \(chunk 0\)"):
        ws.dataset_frame("other")


@pytest.mark.parametrize("size", [0, 1, 64, 100, 128])
def test_chunked_format_round_trips_and_detects_truncation_and_reordering(size):
    key, obj = crypto.new_key(), "blob:x"
    plain = os.urandom(size)
    out = io.BytesIO()
    crypto.encrypt_stream(key, obj, io.BytesIO(plain), out, chunk=32)
    sealed = out.getvalue()
    assert crypto.decrypt_bytes(key, obj, sealed, "t") == plain
    with pytest.raises(StoreError, match="integrity check failed"):
        crypto.decrypt_bytes(key, "blob:y", sealed, "t")  # another object's identity
    if size >= 64:  # at least two chunks: drop the last one, or swap the first two
        block = 32 + crypto.TAG
        body = sealed[crypto.HEADER :]
        chunks = [body[i : i + block] for i in range(0, len(body), block)]
        with pytest.raises(StoreError, match="integrity check failed"):
            crypto.decrypt_bytes(key, obj, sealed[: crypto.HEADER] + b"".join(chunks[:-1]), "t")
        swapped = [chunks[1], chunks[0], *chunks[2:]]
        with pytest.raises(StoreError, match="integrity check failed"):
            crypto.decrypt_bytes(key, obj, sealed[: crypto.HEADER] + b"".join(swapped), "t")


def test_rotation_interrupted_before_its_commit_keeps_the_old_key(ws, big_csv, monkeypatch):
    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    old = ws.encryption_status()["key_id"]

    real_wrap, calls = crypto.wrap, []

    def crash_on_second(master, obj, key):  # the second data key's re-wrap fails
        calls.append(obj)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real_wrap(master, obj, key)

    monkeypatch.setattr(crypto, "wrap", crash_on_second)
    with pytest.raises(RuntimeError, match="power cut"):
        ws.rotate_key()
    monkeypatch.setattr(crypto, "wrap", real_wrap)
    assert len(calls) == 2  # one key was re-wrapped before the failure, inside the transaction
    reopened = Workspace(ws.home)
    assert reopened.encryption_status()["key_id"] == old
    assert len(reopened.dataset_frame("intents")) == 150
    assert reopened.rotate_key()["key_id"] != old  # the leftover .new file is not in the way
    assert len(Workspace(ws.home).dataset_frame("intents")) == 150


def test_rotation_interrupted_after_its_commit_finishes_on_the_next_open(ws, big_csv, monkeypatch):
    from llmos.store import keys

    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    real_replace = os.replace

    def crash(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(keys.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        ws.rotate_key()
    monkeypatch.setattr(keys.os, "replace", real_replace)
    assert (ws.home / "master.key.new").exists()
    reopened = Workspace(ws.home)  # the database names the new key: it is moved into place
    assert len(reopened.dataset_frame("intents")) == 150
    assert sorted(p.name for p in ws.home.glob("master.key*")) == ["master.key"]


def test_rotation_with_a_key_from_the_environment_needs_a_new_key_file(ws, big_csv, monkeypatch, tmp_path):
    import base64

    monkeypatch.setenv(crypto.ENV_KEY, base64.b64encode(crypto.new_key()).decode())
    ws.init(encrypt=True)
    assert not (ws.home / "master.key").exists()
    ws.import_dataset(big_csv, "intents")
    with pytest.raises(UsageError, match="pass --new-key-file"):
        ws.rotate_key()
    new = tmp_path / "new.key"
    crypto.write_key_file(new, crypto.new_key())
    home = ["--home", str(ws.home)]
    assert main([*home, "keys", "rotate", "--new-key-file", str(new), "--json"]) == 0
    monkeypatch.delenv(crypto.ENV_KEY)
    monkeypatch.setenv(crypto.ENV_KEY_FILE, str(new))
    assert len(Workspace(ws.home).dataset_frame("intents")) == 150


def test_a_process_opened_before_a_rotation_picks_up_the_new_key(ws, big_csv, tmp_path):
    ws.init(encrypt=True)
    ws.import_dataset(big_csv, "intents")
    other_process = Workspace(ws.home)
    assert len(other_process.dataset_frame("intents")) == 150  # its keyring holds the old key
    new_id = ws.rotate_key()["key_id"]
    more = tmp_path / "more.csv"
    make_rows(30, seed=9).to_csv(more, index=False)
    other_process.import_dataset(more, "more")  # wraps its new data key under the new master key
    assert set(Workspace(ws.home).encryption_status()["data_keys_by_master_key"]) == {new_id}
    assert len(Workspace(ws.home).dataset_frame("more")) == 30


def test_field_helpers_seal_only_in_an_encrypted_workspace(ws):
    assert crypto.seal_text(ws.store.keyring, "refund my card", "feedback.text") == "refund my card"
    ws.init(encrypt=True)
    keyring = ws.store.keyring
    sealed = crypto.seal_text(keyring, "refund my card", "feedback.text")
    assert crypto.is_sealed(sealed) and "refund" not in sealed
    assert crypto.open_text(keyring, sealed, "feedback.text") == "refund my card"
    with pytest.raises(StoreError, match=r"encrypted value of feedback\.other fails its integrity check"):
        crypto.open_text(keyring, sealed, "feedback.other")  # bound to its column
    value = {"text": "card", "n": 2}
    assert crypto.open_json(keyring, crypto.seal_json(keyring, value, "x.y"), "x.y") == value
    with pytest.raises(StoreError, match="no master key is loaded"):
        crypto.open_text(None, sealed, "feedback.text")


def test_init_encrypt_from_the_cli(home, capsys):
    import json

    assert main(["--home", str(home), "init", "--encrypt", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["encryption"]
    assert shown["encrypted"] and shown["key_source"] == str(home / "master.key")
    assert len(shown["key_id"]) == 16 and shown["blobs_plaintext"] == 0
    key = crypto.read_key_file(home / "master.key")
    assert shown["key_id"] == key.key_id and key.key.hex() not in repr(key)
    assert main(["--home", str(home), "keys", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data_keys"] == 1


@pytest.mark.local_only
def test_keys_enable_interrupted_halfway_is_finished_by_running_it_again(ws, big_csv, tmp_path, monkeypatch):
    from llmos.store import keys

    ws.import_dataset(big_csv, "intents")
    other = tmp_path / "other.csv"
    make_rows(40, seed=3).to_csv(other, index=False)
    ws.import_dataset(other, "other")
    real = keys._encrypt_in_place
    done: list[Path] = []

    def crash_on_second(keyring, blob):
        if done:
            raise OSError("power cut")
        real(keyring, blob)
        done.append(blob)

    monkeypatch.setattr(keys, "_encrypt_in_place", crash_on_second)
    with pytest.raises(OSError, match="power cut"):
        ws.enable_encryption()
    monkeypatch.setattr(keys, "_encrypt_in_place", real)
    reopened = Workspace(ws.home)
    assert reopened.encryption_status()["blobs_plaintext"] == 1
    plain_one = next(
        n
        for n in ("intents", "other")
        if reopened.store.artifacts.path(reopened.dataset(n).artifact) != done[0]
    )
    with pytest.raises(
        StoreError, match="is not encrypted in an encrypted workspace: run `llmos keys enable`"
    ):
        reopened.dataset_frame(plain_one)
    assert reopened.enable_encryption()["blobs_encrypted_now"] == 1
    assert len(Workspace(ws.home).dataset_frame("intents")) == 150
    assert len(Workspace(ws.home).dataset_frame("other")) == 40


def test_a_temporary_folder_inside_the_workspace_is_refused(ws, monkeypatch):
    import tempfile

    ws.init(encrypt=True)
    inside = ws.home / "tmp"
    inside.mkdir()
    monkeypatch.setattr(crypto, "_scratch", None)
    monkeypatch.setattr(tempfile, "tempdir", str(inside))
    with pytest.raises(StoreError, match=r"is inside the encrypted workspace .*: point TMPDIR elsewhere"):
        ws.store.plain_dir(ws.home / "runs")
    assert list(inside.iterdir()) == []
