"""Every `--json` timestamp is in one format: ISO 8601 to the second, with its time zone
(a script parses them all the same way, and none is mistaken for local time)."""

from __future__ import annotations

import json
import re
from typing import Any

from llmos.cli.main import main

LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:")
ONE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


def _times(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _times(v)]
    if isinstance(value, list):
        return [t for v in value for t in _times(v)]
    return [value] if isinstance(value, str) and LOOKS_LIKE_TIME.match(value) else []


def test_every_json_timestamp_has_one_format(ws, intents_csv, tiny_lm_dir, capsys):
    home = ["--home", str(ws.home)]
    commands = [
        ["data", "import", str(intents_csv), "--name", "intents", "--json"],
        ["data", "list", "--json"],
        ["data", "show", "intents", "--json"],
        ["deploy", str(tiny_lm_dir), "--name", "bot", "--json"],
        ["deployments", "list", "--json"],
        ["deployments", "show", "bot", "--json"],
        ["auth", "init", "--json"],
        ["auth", "user", "add", "ann", "--role", "viewer", "--json"],
        ["auth", "user", "list", "--json"],
        ["auth", "token", "create", "--user", "ann", "--json"],
        ["auth", "token", "list", "--json"],
    ]
    seen = []
    for command in commands:
        assert main([*home, *command]) == 0, command
        printed = json.loads(capsys.readouterr().out)
        times = _times(printed)
        assert all(ONE_FORMAT.match(t) for t in times), (command, times)
        seen += times
    assert len(seen) >= 8
