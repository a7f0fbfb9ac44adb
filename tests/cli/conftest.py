"""`run`: the `llmos` command as a user calls it, in a fresh workspace; returns
(exit code, stdout, stderr)."""

import pytest

from llmos.cli.main import main


@pytest.fixture
def run(home, capsys, monkeypatch):
    monkeypatch.setenv("LLMOS_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LLMOS_KERNEL_IDLE_EXIT", "1")  # a kernel started on demand leaves soon after

    def call(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call
