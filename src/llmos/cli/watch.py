"""`llmos watch create|list|status|ingest|series|texts|alerts|plot`: opinion watches,
locally or (`--url`) on a server.

    llmos watch create banks --classifier sentiment --topics "rates,banks:bank|lender"
    llmos watch ingest banks posts.jsonl       # reads what was appended since last time
    llmos watch alerts banks --ack 3
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from llmos.cli.output import out, print_json, table
from llmos.cli.state import STATE

app = typer.Typer(
    help="Opinion watches: texts scored per topic and entity, alerts on change.", no_args_is_help=True
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Name = Annotated[str, typer.Argument(help="The watch's name.")]
SeriesOpt = Annotated[str, typer.Option("--series", help="all, topic:NAME or entity:NAME.")]


@app.command("create")
def create(
    name: Name,
    classifier: Annotated[str, typer.Option("--classifier", help="A classifier deployment (sentiment).")],
    entities: Annotated[str | None, typer.Option("--entities", help="An NER deployment.")] = None,
    topics: Annotated[
        str | None, typer.Option("--topics", help="Comma-separated topics, each TOPIC or TOPIC:kw|kw.")
    ] = None,
    topic_column: Annotated[
        str | None, typer.Option("--topic-column", help="The rows' topic column.")
    ] = None,
    bucket: Annotated[str, typer.Option("--bucket", help="minute, hour or day.")] = "hour",
    negative: Annotated[str | None, typer.Option("--negative", help="The negative label.")] = None,
    text_column: Annotated[str, typer.Option("--text-column")] = "text",
    time_column: Annotated[str, typer.Option("--time-column")] = "timestamp",
    id_column: Annotated[str, typer.Option("--id-column", help="The rows' optional client id.")] = "id",
    webhook: Annotated[str | None, typer.Option("--webhook", help="POST alerts here (local only).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a watch: each text's sentiment, topics and entities, in fixed buckets."""
    info = STATE.backend.create_watch(
        name, classifier, entities=entities, topics=topics, topic_column=topic_column, bucket=bucket,
        negative=negative, text_column=text_column, time_column=time_column, id_column=id_column,
        **({"webhook": webhook} if webhook else {}),
    )  # fmt: skip
    if json_out:
        print_json(info.as_json())
        return
    where = f"topics {', '.join(info.topics)}" if info.topics else f"topic column {info.topic_column or '-'}"
    out.print(f"watch {info.name}: {info.classifier} (negative: {info.negative}), {where}, by {info.bucket}")


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Every watch."""
    rows = STATE.backend.watches()
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(
        None,
        ["name", "classifier", "bucket", "topics"],
        [(r.name, r.classifier, r.bucket, ", ".join(r.topics) or r.topic_column or "") for r in rows],
    )


@app.command("status")
def status(name: Name, json_out: JsonOpt = False) -> None:
    """How many texts, their time range, the series and the alerts of a watch."""
    s = STATE.backend.watch_status(name)
    if json_out:
        print_json(s.as_json())
        return
    j = s.as_json()
    out.print(f"watch {name}: {s.texts} texts from {j['first'] or '-'} to {j['last'] or '-'}")
    out.print(f"series: {', '.join(s.series) or 'none yet'}")
    out.print(f"alerts: {s.alerts} ({s.open_alerts} not acknowledged)")


@app.command("ingest")
def ingest(
    name: Name,
    path: Annotated[Path, typer.Argument(help="A .csv or .jsonl file, or a folder of them.")],
    json_out: JsonOpt = False,
) -> None:
    """Read what was appended to the file(s) since the last ingest, score it and store it.
    With --url the file is read here and its rows posted in batches (the server keeps no
    offset: give the rows ids, and a second run is not counted twice)."""
    r = _post_file(name, path) if STATE.remote else STATE.workspace.ingest_watch_file(name, path)
    if json_out:
        print_json(r.as_json())
        return
    out.print(
        f"watch {name}: {r.stored} texts stored, {r.duplicates} duplicates skipped, {len(r.alerts)} alerts"
    )
    for a in r.alerts:
        out.print(f"  alert {a.alert_id}: {a.message}")


def _post_file(name: str, path: Path) -> Any:
    import csv
    import json

    from llmos.core.errors import DataError, UsageError

    files = sorted(p for p in path.iterdir() if p.suffix in (".csv", ".jsonl")) if path.is_dir() else [path]
    if not path.exists() or not files:
        raise UsageError(f"{path}: no such file, or no .csv or .jsonl file in it")
    rows: list[dict[str, Any]] = []
    for file in files:
        if file.stat().st_size == 0:
            raise DataError(f"{file}: the file is empty")
        with file.open(newline="") as f:
            if file.suffix == ".csv":
                rows += list(csv.DictReader(f))
            else:
                rows += [json.loads(line) for line in f if line.strip()]
    total = None
    for i in range(0, len(rows), 1000):
        part = STATE.backend.ingest_watch(name, rows[i : i + 1000])
        if total is None:
            total = part
        else:
            total.stored += part.stored
            total.duplicates += part.duplicates
            total.alerts += part.alerts
    if total is None:
        raise DataError(f"{path}: no rows in it")
    return total


@app.command("backfill")
def backfill(
    name: Name,
    data: Annotated[str, typer.Option("--data", help="A dataset version with the text and time columns.")],
    cpus: Annotated[int, typer.Option("--cpus")] = 1,
    backend: Annotated[str, typer.Option("--backend", help="local, or ray: score on Ray Data.")] = "local",
    workers: Annotated[int, typer.Option("--workers", help="Ray Data actors (--backend ray).")] = 2,
    json_out: JsonOpt = False,
) -> None:
    """Ingest a dataset version into the watch as a kernel job (follow it with `llmos jobs logs`)."""
    job = STATE.backend.backfill_watch(name, data, cpus=cpus, backend=backend, workers=workers)
    if json_out:
        print_json(job.as_json())
        return
    out.print(f"queued job {job.id}: backfill of {data} into watch {name}")


@app.command("series")
def series(name: Name, series: SeriesOpt = "all", json_out: JsonOpt = False) -> None:
    """Volume, negatives, share negative and mean score per bucket of one series."""
    s = STATE.backend.watch_series(name, series)
    if json_out:
        print_json(s.as_json())
        return
    table(
        f"{name} {s.series} by {s.bucket}",
        ["bucket", "volume", "negative", "share negative", "mean score"],
        [(p.as_json()["bucket"], p.volume, p.negative,
          "" if p.share_negative is None else f"{p.share_negative:.2f}",
          "" if p.mean_score is None else f"{p.mean_score:.3f}") for p in s.points],
    )  # fmt: skip


@app.command("texts")
def texts(
    name: Name,
    bucket: Annotated[str | None, typer.Option("--bucket", help="A bucket's time (ISO 8601).")] = None,
    series: SeriesOpt = "all",
    limit: Annotated[int, typer.Option("--limit")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The texts behind a bucket, most negative first (no --bucket: the newest)."""
    rows = STATE.backend.watch_texts(name, bucket, series, limit)
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    rows_out = [(r.as_json()["ts"], r.label, f"{r.score:.3f}", ", ".join(r.topics), r.text) for r in rows]
    table(None, ["time", "label", "score", "topics", "text"], rows_out)


@app.command("alerts")
def alerts(
    name: Name,
    ack: Annotated[int | None, typer.Option("--ack", help="Acknowledge this alert.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts not acknowledged.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The alerts of a watch; --ack ID acknowledges one."""
    if ack is not None:
        a = STATE.backend.ack_watch_alert(name, ack)
        if json_out:
            print_json(a.as_json())
            return
        out.print(f"alert {a.alert_id} acknowledged by {a.acked_by}")
        return
    rows = STATE.backend.watch_alerts(name, open_only)
    if json_out:
        print_json([r.as_json() for r in rows])
        return
    table(None, ["id", "series", "metric", "kind", "bucket", "z", "acked", "message"],
          [(r.alert_id, r.series, r.metric, r.kind, r.as_json()["bucket"], f"{r.z:.1f}", r.acked_by or "",
            r.message) for r in rows])  # fmt: skip


@app.command("plot")
def plot(
    name: Name,
    series: SeriesOpt = "all",
    png: Annotated[Path, typer.Option("--out", "-o", help="Where to write the PNG.")] = Path("watch.png"),
    json_out: JsonOpt = False,
) -> None:
    """A PNG chart of one series with its alerts marked."""
    p = STATE.backend.plot_watch(name, series, png)
    if json_out:
        print_json(p.as_json())
        return
    out.print(f"wrote {p.png}")
