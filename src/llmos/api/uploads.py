"""File uploads: a multipart/form-data body streamed to a private temporary file, chunk by
chunk, under a size limit.

Starlette's own form parsing spools files too, but it has no size limit for file parts
and turns any error raised while it reads into a 400; this module drives the same
streaming parser (python-multipart's `MultipartParser`) itself, so an upload over the
limit is refused (413, the limit named) at the chunk that crosses it, with or without a
Content-Length, and nothing of it is kept. The temporary folder is removed when the
`receive_upload` block ends, whatever happened.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from starlette.requests import Request

from llmos.core.errors import UsageError
from llmos.ops.context import Context
from llmos.serve.errors import InputTooLarge

MAX_FIELD_BYTES = 64 * 1024  # a form field that is not the file (name, label, ...)
FORM_OVERHEAD = 1024 * 1024  # what a Content-Length may hold beyond the file: boundaries, fields


@dataclass
class Upload:
    """The received form: the file saved as `path` (under its own, sanitised, name, so its
    extension still tells the format) and the other fields as text."""

    path: Path | None = None
    filename: str = ""
    size: int = 0
    complete: bool = False
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        """The saved file (always there once `receive_upload` yields)."""
        assert self.path is not None
        return self.path


def limit_text(limit: int) -> str:
    mib = limit / 2**20
    return f"{mib:g} MiB ({limit} bytes)" if mib >= 1 else f"{limit} bytes"


def too_large(limit: int, what: str = "the upload") -> InputTooLarge:
    return InputTooLarge(
        f"{what} is over this server's upload limit of {limit_text(limit)}; "
        "split the file, or start the server with a larger --max-upload-mb"
    )


def safe_filename(raw: str) -> str:
    """The last path component of a client's file name, without control characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if name in ("", ".", ".."):
        return "upload"
    if len(name) > 200:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[:190] + dot + suffix[:9]) if dot and len(suffix) < 10 else name[:200]
    return name


@asynccontextmanager
async def receive_upload(
    request: Request, limit: int, under: Path | None = None, file_field: str = "file"
) -> AsyncIterator[Upload]:
    """Parse the request's multipart body as it arrives; the file part `file_field` goes to
    disk, in a private temporary folder under `under` (default: the system's). Raises
    `InputTooLarge` past `limit` bytes of file, `UsageError` for a body that is not
    multipart/form-data or lacks the file."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UsageError(
            f"send the file as multipart/form-data with a {file_field!r} field (curl -F {file_field}=@FILE)"
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + FORM_OVERHEAD:
        raise too_large(limit, f"the upload ({int(length)} bytes)")

    if under is not None:
        under.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="llmos-upload-", dir=under))
    upload = Upload()
    part: dict[str, Any] = {}
    header: list[bytes] = [b"", b""]
    out: list[IO[bytes]] = []

    def begin() -> None:
        part.clear()
        part["headers"] = {}

    def header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        part["headers"][header[0].decode("latin-1").lower()] = header[1].decode("latin-1")
        header[0], header[1] = b"", b""

    def headers_done() -> None:
        _, options = parse_options_header(part["headers"].get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        part["name"] = name
        if name == file_field:
            if upload.path is not None:
                raise UsageError(f"the upload holds more than one {file_field!r} field; send one file")
            filename = options.get(b"filename", b"").decode("utf-8", "replace")
            upload.filename = safe_filename(filename)
            upload.path = folder / upload.filename
            out.append(upload.path.open("wb"))
        else:
            part["value"] = bytearray()

    def data(chunk: bytes, start: int, end: int) -> None:
        if part.get("name") == file_field:
            upload.size += end - start
            if upload.size > limit:
                raise too_large(limit, f"{upload.filename or 'the upload'}")
            out[0].write(chunk[start:end])
            return
        value = part["value"]
        value += chunk[start:end]
        if len(value) > MAX_FIELD_BYTES:
            raise UsageError(f"form field {part['name']!r} is over {MAX_FIELD_BYTES} bytes")

    def end() -> None:
        if part.get("name") == file_field:
            out[0].close()
            part["complete"] = upload.complete = True
        elif part.get("name"):
            try:
                upload.fields[part["name"]] = bytes(part["value"]).decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"form field {part['name']!r} is not UTF-8 text") from None

    callbacks: Any = {
        "on_part_begin": begin,
        "on_header_field": header_field,
        "on_header_value": header_value,
        "on_header_end": header_end,
        "on_headers_finished": headers_done,
        "on_part_data": data,
        "on_part_end": end,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        try:
            async for chunk in request.stream():
                if chunk:
                    parser.write(chunk)
            parser.finalize()
        except FormParserError as exc:
            raise UsageError(f"the upload is not valid multipart/form-data: {exc}") from None
        finally:
            for handle in out:
                handle.close()
        if upload.path is None:
            raise UsageError(f"the upload has no {file_field!r} field: send the file as {file_field}=@FILE")
        if not upload.complete:
            raise UsageError(f"the upload of {upload.filename} ended before the file did; send it again")
        yield upload
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def named_upload(request: Request, ctx: Context, what: str) -> AsyncIterator[tuple[Upload, str]]:
    """What every upload route starts with: the server's size limit, a temporary folder on
    the workspace's own disk (a system /tmp may be a small RAM disk; outside an encrypted
    one) and the required `name` form field, naming the `what` it names."""
    limit = request.app.state.runtime.config.max_upload_bytes
    under = ctx.store.plain_dir(ctx.settings.cache_dir / "uploads")
    async with receive_upload(request, limit, under) as upload:
        name = upload.fields.get("name", "").strip()
        if not name:
            raise UsageError(f"name: required (the {what} name, a form field beside the file)")
        yield upload, name
