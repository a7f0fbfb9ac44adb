"""Artifacts in an S3-compatible object store (`s3://bucket/prefix`), through boto3.

The layout under the prefix is the folder store's (`sha256/ab/cdef...`), and so is
everything that matters about a blob: its name is the SHA-256 of the plaintext (an
upload is skipped when the object exists: deduplication across every host), and in an
encrypted workspace the bytes are encrypted here before they leave the machine, so the
object store only ever holds ciphertext. Uploads and downloads go through boto3's
transfer manager, which splits files above `multipart_threshold` into parts sent in
parallel (S3 wants parts of at least 5 MiB).

The folder `cache` (the workspace's `cache/blobs`) is the local read cache: a blob is
downloaded once per host, into a partial file renamed into place, and models are then
laid out from it as from the folder store (hard links, or decryption when encrypted).
The cache holds blobs in their stored form, so it is ciphertext in an encrypted
workspace. It can be deleted at any time.

Opening checks the bucket (`HeadBucket`) with short timeouts, so a wrong endpoint, wrong
credentials or a missing bucket stop the command at once with one line.

boto3 rather than s3fs: the transfer manager (multipart, retries) is what llmos needs
and s3fs would add aiobotocore's pinned botocore on top of the same client.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

from llmos.core.errors import StoreError, first_line
from llmos.core.settings import ENV_S3_ENDPOINT
from llmos.store import crypto
from llmos.store.artifacts import ArtifactStore

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 30
MiB = 1 << 20
MISSING = ("404", "NoSuchKey", "NotFound")


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def parse_s3_url(url: str) -> tuple[str, str, str | None]:
    """(bucket, prefix, endpoint) of `s3://bucket/prefix?endpoint=http://host:port`."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise StoreError(f"invalid S3 URL {url!r}: expected s3://BUCKET/PREFIX")
    endpoint = parse_qs(parts.query).get("endpoint", [None])[0] or os.environ.get(ENV_S3_ENDPOINT) or None
    return parts.netloc, parts.path.strip("/"), endpoint


class S3Artifacts(ArtifactStore):
    """Content-addressed blobs under `s3://bucket/prefix`, read through a local cache."""

    url_schemes = ("s3",)
    remote = True

    def __init__(
        self,
        url: str,
        cache: Path,
        keyring: crypto.Keyring | None = None,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
    ) -> None:
        super().__init__(cache, keyring)
        self.url = url
        self.bucket, self.prefix, self.endpoint = parse_s3_url(url)
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.client = self._client()
        self._check(lambda: self.client.head_bucket(Bucket=self.bucket))

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"max_attempts": 2, "mode": "standard"},
            s3={"addressing_style": "path"} if self.endpoint else {},
        )
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=region, config=config)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" + (f" at {self.endpoint}" if self.endpoint else "")

    def _check(self, call: Any) -> Any:
        """Run one S3 call, turning the client's failures into one line naming the store."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return call()
        except NoCredentialsError:
            raise StoreError(
                f"no S3 credentials for {self.describe()}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket"):
                raise StoreError(f"S3 bucket {self.bucket!r} does not exist at {self.describe()}") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StoreError(
                    f"access to S3 bucket {self.bucket!r} denied ({code}): check AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY"
                ) from None
            raise StoreError(f"S3 request to {self.describe()} failed: {first_line(exc)}") from None
        except BotoCoreError as exc:  # endpoint unreachable, timeouts, bad endpoint URL
            raise StoreError(f"cannot reach the S3 store {self.describe()}: {first_line(exc)}") from None

    def key(self, digest: str) -> str:
        name = f"sha256/{digest[:2]}/{digest[2:]}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold, multipart_chunksize=self.multipart_chunksize
        )

    def _remote_has(self, digest: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
            except ClientError as exc:
                if _code(exc) in MISSING:
                    return False
                raise
            return True

        return bool(self._check(head))

    def has(self, digest: str) -> bool:
        return self._remote_has(digest)

    def _write(self, digest: str, src: BinaryIO) -> None:
        if self._remote_has(digest):
            return  # stored by this or another host already
        cached = self.path(digest)
        if not cached.exists():
            self._write_local(digest, src, cached)  # encrypted here, before the upload
        self._check(
            lambda: self.client.upload_file(
                str(cached), self.bucket, self.key(digest), Config=self._transfer()
            )
        )

    def _blob(self, digest: str, what: str) -> Path:
        from botocore.exceptions import ClientError

        cached = self.path(digest)
        if cached.exists():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-")
        os.close(fd)

        def download() -> bool:
            try:
                self.client.download_file(self.bucket, self.key(digest), tmp, Config=self._transfer())
            except ClientError as exc:
                if _code(exc) in MISSING:
                    return False
                raise
            return True

        try:
            if not self._check(download):
                raise StoreError(f"artifact {digest[:12]} ({what}) is missing from {self.describe()}")
            os.chmod(tmp, 0o444)
            os.replace(tmp, cached)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return cached

    def digests(self) -> list[str]:
        """Every blob under the prefix (listed page by page)."""
        base = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in self._check(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=base))):
            for item in page.get("Contents", []):
                rest = item["Key"][len(base) :]
                found.append(rest.replace("/", ""))
        return sorted(found)

    def blob_states(self) -> list[tuple[str, bool]]:
        states = []
        for digest in self.digests():
            head = self._check(
                lambda d=digest: self.client.get_object(
                    Bucket=self.bucket, Key=self.key(d), Range=f"bytes=0-{len(crypto.MAGIC) - 1}"
                )["Body"].read()
            )
            states.append((digest, head == crypto.MAGIC))
        return states

    def files(self) -> list[Path]:
        """Blobs are not files here; `blob_states` and `digests` list them."""
        return []
