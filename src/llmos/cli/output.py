"""Printing for the CLI: Rich tables for people, `--json` for scripts, a Rich progress bar.

Results go to stdout; progress and log lines go to stderr, so `--json` output stays
clean when piped.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from llmos.core.util import iso

# piped output (files, grep) is not folded at 80 columns as rich would by default
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False)
ISO_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_plain, ensure_ascii=False))


def _plain(value: Any) -> Any:
    """What JSON cannot hold: times in the one format of every output (ISO 8601 with the
    time zone), anything else as text."""
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[cell(v) for v in row])
    out.print(t)


def cell(value: Any) -> Text:
    """A table cell: times to the second, and text as it is (not read as rich markup, so
    names and paths with brackets print verbatim)."""
    if value is None:
        return Text("")
    if isinstance(value, datetime):
        return Text(value.strftime("%Y-%m-%d %H:%M:%S"))
    text = str(value)
    moment = ISO_TIME.match(text)
    return Text(f"{moment[1]} {moment[2]}" if moment else text)


def fmt_pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.2f}%"


class RichProgress:
    """The CLI's `Progress`: one bar per phase with loss and samples/s."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()  # also on errors and Ctrl-C, so the bar never swallows what follows

    def start(self, task: str, total: int | None) -> None:
        if self.quiet:
            return
        self.finish()
        self._bar = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(task, total=total, stats="")

    def advance(self, n: int = 1, **fields: Any) -> None:
        if self._bar is None or self._task is None:
            return
        parts = []
        if "loss" in fields:
            parts.append(f"loss {fields['loss']:.4f}")
        if "samples_per_s" in fields:
            parts.append(f"{fields['samples_per_s']:.1f} samples/s")
        stats = "  ".join(parts)
        self._bar.update(self._task, advance=n, stats=stats)

    def log(self, message: str) -> None:
        if not self.quiet:
            err.print(message)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar, self._task = None, None


HEADLINE = (
    ("accuracy", "accuracy", True),
    ("precision", "precision", True),
    ("recall", "recall", True),
    ("f1", "F1", True),
    ("macro_f1", "macro F1", True),
    ("weighted_f1", "weighted F1", True),
    ("mae", "MAE", False),
    ("rmse", "RMSE", False),
    ("r2", "R2", False),
)


def headline(metrics: dict[str, Any]) -> str:
    """The summary metrics a task reports (classification, entities or regression), in one line."""
    parts = [
        f"{title} {fmt_pct(metrics[key]) if pct else metrics[key]}"
        for key, title, pct in HEADLINE
        if metrics.get(key) is not None
    ]
    return "  ".join(parts)
