"""The `llmos` command: Typer + Rich, one thin function per verb."""
