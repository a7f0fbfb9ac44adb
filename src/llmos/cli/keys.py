"""`llmos keys enable|rotate|status`: encryption at rest of the workspace (`llmos.ops.keys`).

`status` and `rotate` (to a fresh random key) also work with `--url`; `enable` and
`rotate --new-key-file` run only where the workspace is (see `llmos.ops.keys` for why)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmos.cli.output import err, out, print_json
from llmos.cli.state import STATE

app = typer.Typer(
    help="Encryption at rest: enable it, rotate the master key, show the status.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def show_status(status: Any) -> None:
    if not status["encrypted"]:
        out.print("encryption at rest: off (turn it on with `llmos keys enable`)")
        return
    out.print(f"encryption at rest: on ({status['algorithm']})")
    out.print(f"master key {status['key_id']} from {status['key_source']}")
    out.print(
        f"{status['data_keys']} data keys; {status['blobs']} blobs, "
        f"{status['blobs_plaintext']} of them still plaintext"
    )


@app.command("enable")
def enable(json_out: JsonOpt = False) -> None:
    """Encrypt the workspace: new data from now on, and everything already stored.
    The master key comes from LLMOS_MASTER_KEY, or the key file (LLMOS_MASTER_KEY_FILE,
    default $LLMOS_HOME/master.key), which is created (mode 0600) when missing."""
    ws = STATE.local("keys enable", "it rewrites every stored file; run it there with the server stopped")
    result = ws.enable_encryption()
    if json_out:
        print_json(result.as_json())
        return
    if result["created_key_file"]:
        err.print(f"created master key file {result['key_source']}: back it up; without it the data is lost")
    out.print(f"encrypted {result['blobs_encrypted_now']} stored blobs")
    show_status(result)


@app.command("rotate")
def rotate(
    new_key_file: Annotated[
        Path | None,
        typer.Option(
            "--new-key-file", help="Take the new master key from this 0600 file (default: a new random key)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-wrap every data key under a new master key (the data is not re-encrypted)."""
    result = STATE.backend.rotate_key(new_key_file)
    if json_out:
        print_json(result.as_json())
        return
    out.print(
        f"re-wrapped {result['rewrapped']} data keys: master key {result['old_key_id']} -> {result['key_id']}"
    )
    if result["key_source"] == "LLMOS_MASTER_KEY":
        err.print(f"set LLMOS_MASTER_KEY to the key in {new_key_file} before the next command")


@app.command("status")
def status(json_out: JsonOpt = False) -> None:
    """Whether the workspace is encrypted, under which master key, and what is."""
    result = STATE.backend.encryption_status()
    if json_out:
        print_json(result.as_json())
    else:
        show_status(result)
