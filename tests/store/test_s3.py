"""Artifacts in an S3-compatible store (moto's server on 127.0.0.1): content addressing and
dedup across hosts, encryption before upload, multipart uploads, the local read cache, and
one clear line for every way the store can be unreachable or wrong."""

import os
import time
import uuid
from pathlib import Path

import pytest

from llmos.core.errors import StoreError
from llmos.core.settings import Settings
from llmos.store import crypto
from llmos.store.s3 import S3Artifacts
from tests import servers


@pytest.fixture(scope="module")
def s3(scale_servers):
    """An S3 endpoint with a bucket: the session's on the scale backend, else one for this module."""
    os.environ.update(servers.s3_env())
    if scale_servers is not None:
        yield scale_servers.s3_endpoint, scale_servers.bucket
        return
    with servers.moto_s3() as endpoint:
        servers.make_bucket(endpoint, "llmos-test")
        yield endpoint, "llmos-test"


def _url(s3, prefix=None) -> str:
    endpoint, bucket = s3
    return f"s3://{bucket}/{prefix or uuid.uuid4().hex}?endpoint={endpoint}"


def test_blobs_are_content_addressed_and_deduplicated_across_hosts(s3, tmp_path):
    url = _url(s3)
    host_a = S3Artifacts(url, tmp_path / "a-cache")
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "weights.bin").write_bytes(b"w" * 1000)
    (src / "sub" / "copy.bin").write_bytes(b"w" * 1000)
    manifest = host_a.put_dir(src)
    assert len(set(manifest.values())) == 1 and len(host_a.digests()) == 1
    host_b = S3Artifacts(url, tmp_path / "b-cache")  # another host: empty cache
    out = host_b.materialize(manifest, tmp_path / "out")
    assert (out / "sub" / "copy.bin").read_bytes() == b"w" * 1000
    assert host_b.path(manifest["weights.bin"]).exists()  # now in host b's read cache
    assert host_b.put_bytes(b"w" * 1000) == manifest["weights.bin"] and len(host_b.digests()) == 1


def test_an_encrypted_workspace_uploads_only_ciphertext(s3, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv(crypto.ENV_KEY, crypto.base64.b64encode(bytes(32)).decode())
    monkeypatch.setenv("LLMOS_ARTIFACTS_URL", _url(s3))
    from llmos import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.init(encrypt=True)
    csv = tmp_path / "d.csv"
    csv.write_text("text,label\nsecret alpha words,a\nsecret beta words,b\n")
    ws.import_dataset(csv, "d")
    store = ws.store
    (digest,) = store.artifacts.digests()
    endpoint, bucket = s3
    body = (
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        .get_object(Bucket=bucket, Key=store.artifacts.key(digest))["Body"]
        .read()
    )
    assert body.startswith(crypto.MAGIC) and b"secret" not in body
    assert ws.encryption_status()["blobs_plaintext"] == 0


def test_large_files_go_up_in_parts_and_come_back_whole(s3, tmp_path):
    store = S3Artifacts(
        _url(s3), tmp_path / "cache", multipart_threshold=5 << 20, multipart_chunksize=5 << 20
    )
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1 << 20) * 12)  # 12 MiB: three parts
    digest = store.put_file(big)
    head = store.client.head_object(Bucket=store.bucket, Key=store.key(digest))
    assert head["ETag"].strip('"').endswith("-3")  # S3's multipart ETag: md5-of-parts-N
    again = S3Artifacts(store.url, tmp_path / "cache2")
    assert again.read_bytes(digest) == big.read_bytes()


def test_a_missing_blob_is_named(s3, tmp_path):
    store = S3Artifacts(_url(s3), tmp_path / "cache")
    with pytest.raises(StoreError, match=r"artifact 000000000000 \(weights.bin\) is missing from s3://"):
        store.materialize({"weights.bin": "0" * 64}, tmp_path / "out")


# --- bad input: one line within 10 s, nothing written locally --------------------------


def _refused(home: Path, match: str, **env: str) -> None:
    from llmos.store.db import Store

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        start = time.monotonic()
        with pytest.raises(StoreError) as caught:
            Store(Settings.resolve(home))
        assert time.monotonic() - start < 10
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    message = caught.value.message
    assert "\n" not in message and __import__("re").search(match, message), message
    assert not home.exists()


def test_an_unreachable_database_is_one_line_and_writes_nothing(tmp_path):
    port = servers.free_port()  # nothing listens there
    _refused(
        tmp_path / "ws",
        rf"cannot open workspace database postgresql\+psycopg://u:\*\*\*@127.0.0.1:{port}/x",
        LLMOS_DB_URL=f"postgresql://u:pw@127.0.0.1:{port}/x",
    )


def test_an_unreachable_s3_endpoint_is_one_line_and_writes_nothing(tmp_path, s3):
    port = servers.free_port()
    _refused(
        tmp_path / "ws",
        r"cannot reach the S3 store s3://llmos-test/p at http://127.0.0.1:\d+",
        LLMOS_ARTIFACTS_URL=f"s3://llmos-test/p?endpoint=http://127.0.0.1:{port}",
    )


def test_a_bucket_that_does_not_exist_is_one_line_and_writes_nothing(tmp_path, s3):
    _refused(
        tmp_path / "ws",
        r"S3 bucket 'no-such-bucket' does not exist",
        LLMOS_ARTIFACTS_URL=_url(s3).replace("llmos-test", "no-such-bucket"),
    )


def test_wrong_s3_credentials_are_one_line_and_write_nothing(tmp_path):
    """moto checks signatures once told to (after the two calls that create a user)."""
    import boto3

    os.environ.update(servers.s3_env())
    with servers.moto_s3({"INITIAL_NO_AUTH_ACTION_COUNT": "3"}) as endpoint:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
        iam.create_user(UserName="llmos")
        key = iam.create_access_key(UserName="llmos")["AccessKey"]
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        ).create_bucket(Bucket="locked")
        _refused(
            tmp_path / "ws",
            r"access to S3 bucket 'locked' denied \(\w+\): check AWS_ACCESS_KEY_ID",
            LLMOS_ARTIFACTS_URL=f"s3://locked/p?endpoint={endpoint}",
            AWS_ACCESS_KEY_ID=key["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY="wrong-secret",
        )


def test_init_db_records_a_reachable_database_and_refuses_an_unreachable_one(tmp_path, scale_servers):
    import subprocess
    import sys

    port = servers.free_port()
    home = tmp_path / "bad"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("LLMOS_DB_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "llmos.cli.main", "--home", str(home), "init", "--db", f"postgresql://u:pw@127.0.0.1:{port}/x"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert run.returncode != 0 and "cannot open workspace database" in run.stderr + run.stdout
    assert "pw" not in run.stderr + run.stdout and not home.exists()
    if scale_servers is None:
        return
    scale_servers.admin("DROP DATABASE IF EXISTS init_cli")
    scale_servers.admin("CREATE DATABASE init_cli")
    url = scale_servers.db_url("init_cli")
    argv = [sys.executable, "-m", "llmos.cli.main", "--home", str(tmp_path / "ok"), "init", "--db", url]
    run = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert Settings.resolve(tmp_path / "ok").store_config()["db_url"] == url
    assert not (tmp_path / "ok" / "llmos.db").exists()
