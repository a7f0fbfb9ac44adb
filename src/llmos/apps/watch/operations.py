"""The operations of opinion watches: create one, ingest texts (rows, a file or folder
read incrementally), read its series, texts and alerts, acknowledge an alert, plot.

An ingested batch is checked whole before anything is stored (every row needs a text
and a timestamp that parses; the first bad row is named), scored by the watch's
classifier deployment through `ops.predict_deployment` (as the deployment runs it: its
`--optimize onnx` copy when it has one), given its topics (a column, or keyword
rules) and entities (an NER deployment), then stored with the bucket counts it adds to
in one transaction (`ops.watch.store_texts`): an acknowledged batch is counted once, a
client id already stored is skipped, and a failed batch leaves nothing. Detection
(`detect.py`) then runs over the series the batch touched; each new episode alerts
once through the F6 channels: a WARNING log line, a row in `watch_alerts`, an audit
event and the watch's webhook (set where the workspace is, never over HTTP).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import Field

from llmos.core.errors import DataError, UsageError
from llmos.ops import watch as store
from llmos.ops.context import Context
from llmos.ops.jobs import JobInfo
from llmos.ops.predict import predict_deployment
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp

log = logging.getLogger("llmos.watch")
BUCKETS = ("minute", "hour", "day")
NEGATIVE_NAMES = ("negative", "neg", "0", "bad")


class WatchInfo(Result):
    name: str
    classifier: str = Field(description="The classifier deployment that scores each text")
    negative: str = Field(description="The classifier's label counted as negative")
    entities: str | None = Field(None, description="The NER deployment that finds entities")
    topics: dict[str, list[str]] = Field(default_factory=dict, description="Topic -> keywords")
    topic_column: str | None = None
    bucket: str
    text_column: str = "text"
    time_column: str = "timestamp"
    id_column: str = "id"
    detector: dict[str, Any] = Field(default_factory=dict)
    created_by: str = ""
    created_at: Timestamp


class WatchStatus(Result):
    watch: WatchInfo
    texts: int
    first: Timestamp | None = None
    last: Timestamp | None = None
    series: list[str] = Field(default_factory=list)
    alerts: int = 0
    open_alerts: int = 0
    sources: dict[str, int] = Field(default_factory=dict, description="File -> rows read")


class WatchAlertInfo(Result):
    alert_id: int
    watch: str
    series: str
    metric: str = Field(description="volume or negative_share")
    kind: str = Field(description="spike or level_shift")
    episode_start: Timestamp
    bucket: Timestamp = Field(description="The bucket it was detected in")
    value: float
    baseline: float
    z: float
    message: str
    examples: list[str] = Field(default_factory=list, description="The most negative texts of the bucket")
    acked_by: str | None = None
    acked_at: Timestamp | None = None
    created_at: Timestamp


class IngestReceipt(Result):
    watch: str
    stored: int = Field(description="Texts stored by this call")
    duplicates: int = Field(0, description="Texts skipped: their client id was stored already")
    alerts: list[WatchAlertInfo] = Field(default_factory=list, description="Alerts this call fired")
    source: str | None = None


class SeriesPoint(Result):
    bucket: Timestamp
    volume: int
    negative: int
    share_negative: float | None = None
    mean_score: float | None = None


class WatchSeries(Result):
    watch: str
    series: str
    bucket: str
    points: list[SeriesPoint]


class WatchTextInfo(Result):
    id: int
    client_id: str | None = None
    ts: Timestamp
    bucket: Timestamp
    text: str
    label: str
    negative: bool
    score: float
    topics: list[str]
    entities: list[str]


class WatchPlot(Result):
    watch: str
    series: str
    png: str | None = Field(None, description="Where the chart was written")
    chart: str | None = Field(None, description="The chart as base64 PNG (when no path is given)")


def watch_info(row: Any) -> WatchInfo:
    settings = row.settings or {}
    return WatchInfo(
        name=row.name, classifier=row.classifier, negative=row.negative, entities=row.entities,
        topics=row.topics or {}, topic_column=row.topic_column, bucket=row.bucket,
        text_column=settings.get("text_column", "text"), time_column=settings.get("time_column", "timestamp"),
        id_column=settings.get("id_column", "id"), detector=settings.get("detector", {}),
        created_by=row.created_by, created_at=row.created_at,
    )  # fmt: skip


def alert_info(row: Any, watch: str) -> WatchAlertInfo:
    return WatchAlertInfo(
        alert_id=row.id, watch=watch, series=row.series, metric=row.metric, kind=row.kind,
        episode_start=row.episode_start, bucket=row.bucket_start, value=row.value, baseline=row.baseline,
        z=row.z, message=row.message, examples=row.examples or [], acked_by=row.acked_by,
        acked_at=row.acked_at, created_at=row.created_at,
    )  # fmt: skip


def parse_topics(topics: list[str] | str | dict[str, list[str]] | None) -> dict[str, list[str]]:
    """`["rates", "banks:bank|lender"]` or "rates,banks:bank|lender": topic -> keywords
    (a topic without keywords matches its own name)."""
    if topics is None:
        return {}
    if isinstance(topics, dict):
        return {str(k): [str(w).lower() for w in v] for k, v in topics.items()}
    items = [t.strip() for t in (topics.split(",") if isinstance(topics, str) else topics) if t.strip()]
    found: dict[str, list[str]] = {}
    for item in items:
        name, _, words = item.partition(":")
        name = name.strip()
        if not name:
            raise UsageError(f"--topics {item!r}: give TOPIC or TOPIC:keyword|keyword")
        found[name] = [w.strip().lower() for w in (words or name).split("|") if w.strip()]
    return found


# --- operations ------------------------------------------------------------------------


@operation("data:write")
def create_watch(
    ctx: Context,
    name: str,
    classifier: str,
    *,
    entities: str | None = None,
    topics: list[str] | str | dict[str, list[str]] | None = None,
    topic_column: str | None = None,
    bucket: str = "hour",
    negative: str | None = None,
    text_column: str = "text",
    time_column: str = "timestamp",
    id_column: str = "id",
    detector: dict[str, Any] | None = None,
    webhook: str | None = None,
) -> WatchInfo:
    """Watch texts scored by classifier deployment `classifier`, by topic (keyword rules
    in `topics`, or the `topic_column` of each row) and entity (NER deployment
    `entities`), in `bucket`s (minute, hour, day); nothing is stored on bad input."""
    from llmos.apps.watch.detect import DetectorSettings
    from llmos.core.util import check_name

    check_name(name, "watch name")
    if bucket not in BUCKETS:
        raise UsageError(f"--bucket {bucket!r}: use {', '.join(BUCKETS)}")
    if topics and topic_column:
        raise UsageError("give --topics or --topic-column, not both")
    rules = parse_topics(topics)
    settings = DetectorSettings.from_dict(detector)
    store.classifier_model(ctx, classifier)
    if entities is not None:
        store.classifier_model(ctx, entities, "--entities")
    probe = predict_deployment(ctx, classifier, ["ok"]).predictions[0]
    labels = [str(k) for k in (probe.get("probabilities") or {})]
    if not labels:
        raise UsageError(f"--classifier {classifier!r} gives no label probabilities: use a text classifier")
    if negative is None:
        negative = next((x for n in NEGATIVE_NAMES for x in labels if x.lower() == n), None)
        if negative is None:
            raise UsageError(f"which of {', '.join(labels)} is negative? say so with --negative LABEL")
    elif negative not in labels:
        raise UsageError(f"--negative {negative!r}: the classifier's labels are {', '.join(labels)}")
    row = store.add_watch(
        ctx, name=name, classifier=classifier, entities=entities, negative=negative, topics=rules,
        topic_column=topic_column, bucket=bucket,
        settings={"text_column": text_column, "time_column": time_column, "id_column": id_column,
                  "detector": settings.as_dict(), "webhook": webhook},
    )  # fmt: skip
    return watch_info(row)


@operation("data:read")
def watches(ctx: Context) -> list[WatchInfo]:
    """Every watch of the project, by name."""
    return [watch_info(r) for r in store.list_watches(ctx)]


@operation("data:read")
def watch_status(ctx: Context, name: str) -> WatchStatus:
    """A watch: its settings, how many texts, their time range, its series and alerts."""
    row = store.get_watch(ctx, name)
    count, first, last = store.text_count(ctx, row)
    alerts = store.list_alerts(ctx, row)
    sources = store.sources(ctx, row)
    return WatchStatus(
        watch=watch_info(row), texts=count, first=first, last=last, series=store.series_names(ctx, row),
        alerts=len(alerts), open_alerts=sum(a.acked_at is None for a in alerts), sources=sources,
    )  # fmt: skip


@operation("data:write")
def ingest_watch(ctx: Context, name: str, rows: list[dict[str, Any]]) -> IngestReceipt:
    """Score and store a batch of rows (text, timestamp, optional id and topic column):
    acknowledged once stored; a row whose id is stored already is skipped."""
    watch = store.get_watch(ctx, name)
    if not isinstance(rows, list) or not rows:
        raise UsageError("rows: give at least one row (a dict with a text and a timestamp)")
    return _ingest(ctx, watch, rows, [f"row {i}" for i in range(len(rows))])


@operation("data:write")
def ingest_watch_file(ctx: Context, name: str, path: str | os.PathLike[str]) -> IngestReceipt:
    """Ingest what was appended to a CSV or JSONL file (or to each such file of a folder)
    since the last call: the offset read moves with the texts, in one transaction."""
    watch = store.get_watch(ctx, name)
    target = Path(path)
    if not target.exists():
        raise UsageError(f"{target}: no such file or folder")
    files = (
        sorted(p for p in target.iterdir() if p.suffix in (".csv", ".jsonl")) if target.is_dir() else [target]
    )
    if not files:
        raise UsageError(f"{target}: no .csv or .jsonl file in it")
    total = IngestReceipt(watch=name, stored=0, source=str(target))
    for file in files:
        receipt = _ingest_file(ctx, watch, file)
        total.stored += receipt.stored
        total.duplicates += receipt.duplicates
        total.alerts += receipt.alerts
    return total


@operation("data:read")
def watch_series(ctx: Context, name: str, series: str = "all") -> WatchSeries:
    """One series of a watch (`all`, `topic:NAME`, `entity:NAME`): volume, negative count,
    share negative and mean negative score per bucket (empty buckets as zeros)."""
    watch = store.get_watch(ctx, name)
    rows = store.buckets(ctx, watch, series)
    if not rows and series not in store.series_names(ctx, watch) and series != "all":
        known = ", ".join(store.series_names(ctx, watch)) or "none yet"
        raise UsageError(f"watch {name!r} has no series {series!r} (series: {known})")
    points = []
    for start, volume, negative, score in _dense(rows, watch.bucket):
        points.append(
            SeriesPoint(
                bucket=start, volume=volume, negative=negative,
                share_negative=negative / volume if volume else None,
                mean_score=score / volume if volume else None,
            )
        )  # fmt: skip
    return WatchSeries(watch=name, series=series, bucket=watch.bucket, points=points)


@operation("data:read")
def watch_texts(
    ctx: Context, name: str, bucket: str | datetime | None = None, series: str = "all", limit: int = 20
) -> list[WatchTextInfo]:
    """The texts behind a bucket of a series, most negative first (no bucket: the newest)."""
    watch = store.get_watch(ctx, name)
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    start = None
    if bucket is not None:
        start = _floor(_parse_time(bucket, "bucket"), watch.bucket)
    rows = store.texts_in(ctx, watch, start, limit, order_by_score=start is not None)
    kept = [r for r in rows if series == "all" or series in _series_of(r)][:limit]
    return [
        WatchTextInfo(
            id=r.id,
            client_id=r.client_id,
            ts=r.ts,
            bucket=r.bucket_start,
            text=r.text,
            label=r.label,
            negative=r.negative,
            score=r.score,
            topics=r.topics or [],
            entities=r.entities or [],
        )
        for r in kept
    ]


@operation("data:read")
def watch_alerts(ctx: Context, name: str, open_only: bool = False) -> list[WatchAlertInfo]:
    """The alerts a watch raised, oldest first (`open_only`: not acknowledged yet)."""
    watch = store.get_watch(ctx, name)
    return [alert_info(a, name) for a in store.list_alerts(ctx, watch, open_only)]


@operation("data:write")
def ack_watch_alert(ctx: Context, name: str, alert_id: int) -> WatchAlertInfo:
    """Acknowledge an alert: who saw it and when (acknowledging twice keeps the first)."""
    watch = store.get_watch(ctx, name)
    return alert_info(store.ack_alert(ctx, watch, alert_id), name)


@operation("data:read")
def plot_watch(
    ctx: Context, name: str, series: str = "all", png: str | os.PathLike[str] | None = None
) -> WatchPlot:
    """A PNG chart of one series (volume and share negative) with its alerts marked:
    written to `png`, or returned as base64 without it."""
    from llmos.apps.watch.plot import plot_series
    from llmos.core.util import atomic_path

    data = watch_series(ctx, name, series)
    if not data.points:
        raise UsageError(f"watch {name!r} has no texts yet: nothing to plot")
    alerts = [a for a in watch_alerts(ctx, name) if a.series == series]
    if png is not None:
        with atomic_path(Path(png)) as tmp:
            plot_series(data, alerts, tmp)
        return WatchPlot(watch=name, series=series, png=str(png))
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "chart.png"
        plot_series(data, alerts, out)
        return WatchPlot(watch=name, series=series, chart=base64.b64encode(out.read_bytes()).decode())


@operation("data:write")
def backfill_watch(
    ctx: Context, name: str, data: str, *, cpus: int = 1, start_kernel: bool = True,
    backend: str = "local", workers: int = 2,
) -> JobInfo:  # fmt: skip
    """Queue a job on the kernel that ingests a dataset version into a watch (the rows'
    text and timestamp columns; a row without an id column gets `DATASET@V#row`, so a
    retried job counts nothing twice). Every row is checked before the first is stored.
    `backend="ray"` scores the texts on Ray Data (`workers` actors) before they are stored;
    the series are the same either way."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend!r}: use {', '.join(BACKENDS)}")
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    watch = store.get_watch(ctx, name)
    ref = store.dataset_ref(ctx, data)
    payload = {"watch": watch.name, "data": ref, "role": ctx.actor.role, "project": ctx.project,
               "backend": backend, "workers": workers}  # fmt: skip
    if backend == "ray":
        cpus = max(cpus, workers)
    return store.queue_job(ctx, "watch-backfill", watch.name, BACKFILL_HANDLER, payload, cpus, start_kernel)


BACKFILL_HANDLER = "llmos.apps.watch.operations:run_backfill"
BACKENDS = ("local", "ray")


def run_backfill(job: Any) -> dict[str, Any]:
    """The backfill job's body (in a kernel worker): as the submitter, in chunks of `CHUNK`."""
    from llmos.ops.context import Actor

    p = job.payload
    ctx = Context(
        job.store, Actor(str(p.get("submitted_by") or "backfill"), p.get("role", "admin")), p["project"]
    )
    watch = store.get_watch(ctx, p["watch"])
    frame = store.dataset_frame(ctx, p["data"])
    id_col = (watch.settings or {}).get("id_column", "id")
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for i, row in enumerate(rows):
        if row.get(id_col) in (None, ""):
            row[id_col] = f"{p['data']}#{i}"
    where = [f"{p['data']} row {i + 1}" for i in range(len(rows))]
    parsed = _check_rows(watch, rows, where)
    scored: list[dict[str, Any]] | None = None
    if p.get("backend") == "ray":
        job.progress.log(f"scoring {len(rows)} texts on Ray Data with {p.get('workers', 2)} actors")
        scored = store.score_on_ray(ctx, watch.classifier, [x[1] for x in parsed], int(p.get("workers", 2)))
    job.progress.start("ingesting", len(rows))
    stored = duplicates = alerts = 0
    for i in range(0, len(rows), CHUNK):
        part = _ingest(
            ctx, watch, rows[i : i + CHUNK], where[i : i + CHUNK],
            scored=scored[i : i + CHUNK] if scored is not None else None,
        )  # fmt: skip
        stored, duplicates, alerts = (
            stored + part.stored,
            duplicates + part.duplicates,
            alerts + len(part.alerts),
        )
        job.progress.advance(len(rows[i : i + CHUNK]))
    job.progress.finish()
    return {
        "watch": watch.name,
        "data": p["data"],
        "stored": stored,
        "duplicates": duplicates,
        "alerts": alerts,
    }


# --- the pipeline ----------------------------------------------------------------------


def _parse_time(value: Any, where: str) -> datetime:
    """A timestamp (ISO 8601, or seconds since the epoch) as naive UTC."""
    import pandas as pd

    if (
        value is None
        or (isinstance(value, float) and value != value)
        or (isinstance(value, str) and not value.strip())
    ):
        raise DataError(f"{where}: no timestamp")
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
        elif isinstance(value, datetime):
            moment = value
        else:
            moment = pd.Timestamp(str(value).strip()).to_pydatetime()
    except (ValueError, TypeError, OverflowError, OSError):
        raise DataError(
            f"{where}: timestamp {value!r} does not parse (use ISO 8601 or epoch seconds)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _floor(moment: datetime, bucket: str) -> datetime:
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _dense(rows: list[Any], bucket: str) -> list[tuple[datetime, int, int, float]]:
    """Consecutive buckets from the first to the last, zeros where no text fell."""
    if not rows:
        return []
    found = {r.bucket_start: r for r in rows}
    out = []
    moment, last = min(found), max(found)
    while moment <= last:
        r = found.get(moment)
        out.append((moment, r.volume, r.negative, r.score_sum) if r else (moment, 0, 0, 0.0))
        moment += STEP[bucket]
    return out


def _series_of(row: Any) -> list[str]:
    return ["all"] + [f"topic:{t}" for t in row.topics or []] + [f"entity:{e}" for e in row.entities or []]


def _matcher(rules: dict[str, list[str]]) -> list[tuple[str, re.Pattern[str]]]:
    return [
        (topic, re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE))
        for topic, words in rules.items()
        if words
    ]


def _entities(ctx: Context, deployment: str, texts: list[str]) -> list[list[str]]:
    store.classifier_model(ctx, deployment, "--entities")
    words = [t.split() or ["."] for t in texts]
    found = []
    for w, p in zip(words, predict_deployment(ctx, deployment, [" ".join(x) for x in words]).predictions):
        names = {" ".join(w[e["start"] : e["end"]]) for e in p.get("entities", []) if e["end"] <= len(w)}
        found.append(sorted(n for n in names if n))
    return found


def _check_rows(watch: Any, rows: list[Any], where: list[str]) -> list[tuple[Any, str, datetime, str | None]]:
    """Each row's (row, text, timestamp, client id); the first bad row is named."""
    settings = watch.settings or {}
    text_col, time_col = settings.get("text_column", "text"), settings.get("time_column", "timestamp")
    id_col = settings.get("id_column", "id")
    parsed = []
    for row, place in zip(rows, where):
        if not isinstance(row, dict):
            raise DataError(f"{place}: give a row as an object with {text_col!r} and {time_col!r}")
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{place}: no text in column {text_col!r}")
        ts = _parse_time(row.get(time_col), place)
        cid = row.get(id_col)
        parsed.append((row, text, ts, None if cid is None or cid == "" else str(cid)))
    return parsed


def _ingest(
    ctx: Context, watch: Any, rows: list[Any], where: list[str], source: Any = None,
    scored: list[dict[str, Any]] | None = None,
) -> IngestReceipt:  # fmt: skip
    """Check, score (unless `scored` holds each row's prediction already), store, detect."""
    parsed = _check_rows(watch, rows, where)
    if scored is not None:
        parsed = [(*x, pred) for x, pred in zip(parsed, scored)]  # type: ignore[misc]
    known = store.known_client_ids(ctx, watch, [p[3] for p in parsed if p[3] is not None])
    batch_ids: set[str] = set()
    fresh = []
    for p in parsed:
        if p[3] is not None and (p[3] in known or p[3] in batch_ids):
            continue
        if p[3] is not None:
            batch_ids.add(p[3])
        fresh.append(p)
    duplicates = len(parsed) - len(fresh)
    texts: list[dict[str, Any]] = []
    if fresh:
        store.classifier_model(ctx, watch.classifier)
        if scored is not None:
            predictions = [p[4] for p in fresh]  # type: ignore[misc]
        else:
            predictions = predict_deployment(ctx, watch.classifier, [p[1] for p in fresh]).predictions
        entities = (
            _entities(ctx, watch.entities, [p[1] for p in fresh]) if watch.entities else [[]] * len(fresh)
        )
        rules = _matcher(watch.topics or {})
        for (row, text, ts, cid, *_), pred, ents in zip(fresh, predictions, entities):
            if watch.topic_column:
                raw = row.get(watch.topic_column)
                topics = (
                    sorted({t.strip() for t in str(raw).split("|") if t.strip()})
                    if raw not in (None, "")
                    else []
                )
            else:
                topics = [topic for topic, pattern in rules if pattern.search(text)]
            score = float((pred.get("probabilities") or {}).get(watch.negative, 0.0))
            label = str(pred.get("label"))
            start = _floor(ts, watch.bucket)
            texts.append({
                "client_id": cid, "ts": ts, "bucket_start": start, "text": text, "label": label,
                "negative": label == watch.negative, "score": score, "topics": topics, "entities": ents,
                "source": str(source[0]) if source else "http",
                "series": ["all"] + [f"topic:{t}" for t in topics] + [f"entity:{e}" for e in ents],
            })  # fmt: skip
    stored, skipped = store.store_texts(ctx, watch, texts, source)
    touched = sorted({s for t in texts for s in t["series"]})
    alerts = _detect(ctx, watch, touched) if stored else []
    return IngestReceipt(watch=watch.name, stored=stored, duplicates=duplicates + skipped, alerts=alerts)


CHUNK = 2000  # rows per transaction when a file is read


def _read_new(path: Path, offset: int) -> list[tuple[list[dict[str, Any]], list[str], int]]:
    """The rows appended to `path` after byte `offset` (whole lines; a CSV's header is its
    first line), in chunks of `CHUNK`: (rows, where each came from, offset after them)."""
    import csv

    with path.open("rb") as f:
        header = f.readline() if path.suffix == ".csv" else b""
        start = max(offset, len(header))
        f.seek(start)
        data = f.read()
    names = next(csv.reader([header.decode("utf-8", errors="replace")]), []) if header else []
    after = " (after the last ingest)" if offset else ""
    chunks: list[tuple[list[dict[str, Any]], list[str], int]] = []
    rows: list[dict[str, Any]] = []
    where: list[str] = []
    position, number = start, 0
    for raw in data.splitlines(keepends=True):
        position += len(raw)
        number += 1
        line = raw.decode("utf-8", errors="replace").strip("\r\n")
        if not line.strip():
            continue
        place = f"{path.name} {'row' if names else 'line'} {number}{after}"
        if names:
            values = next(csv.reader([line]))
            rows.append(dict(zip(names, values)))
        else:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{place}: not JSON ({exc.msg})") from None
        where.append(place)
        if len(rows) == CHUNK:
            chunks.append((rows, where, position))
            rows, where = [], []
    if rows:
        chunks.append((rows, where, position))
    return chunks


def _ingest_file(ctx: Context, watch: Any, path: Path) -> IngestReceipt:
    """Every chunk is checked before the first is stored, so a bad row stores nothing."""
    if path.suffix not in (".csv", ".jsonl"):
        raise UsageError(f"{path}: give a .csv or .jsonl file")
    key = str(path.resolve())
    offset, _ = store.source_offset(ctx, watch, key)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    chunks = _read_new(path, offset)
    if not chunks and offset == 0:
        raise DataError(f"{path}: no rows in it")
    for rows, where, _ in chunks:
        _check_rows(watch, rows, where)
    receipt = IngestReceipt(watch=watch.name, stored=0, source=str(path))
    for rows, where, end in chunks:
        part = _ingest(ctx, watch, rows, where, (key, end, len(rows)))
        receipt.stored += part.stored
        receipt.duplicates += part.duplicates
        receipt.alerts += part.alerts
    return receipt


def _detect(ctx: Context, watch: Any, series: list[str]) -> list[WatchAlertInfo]:
    """Run the detectors over the touched series (all closed buckets: the newest bucket
    may still fill) and fire the alerts of new episodes."""
    from llmos.apps.watch.detect import DetectorSettings, detect

    settings = DetectorSettings.from_dict((watch.settings or {}).get("detector")).resolved(watch.bucket)
    step = STEP[watch.bucket]
    candidates: list[dict[str, Any]] = []
    for name in series:
        points = _dense(store.buckets(ctx, watch, name), watch.bucket)
        if len(points) < 2:
            continue
        closed = points[:-1]
        volume = [p[1] for p in closed]
        negative = [p[2] for p in closed]
        for e in detect(volume, negative, watch.bucket, settings):
            start, at = closed[e.start][0], closed[e.detected][0]
            what = "negative share" if e.metric == "negative_share" else "volume"
            if e.metric == "volume":
                ratio = e.value / max(e.baseline, 1e-9)
                size = f"{e.value:.0f} texts vs {e.baseline:.1f} expected (x{ratio:.1f})"
            else:
                size = (
                    f"{e.value:.0%} vs {e.baseline:.0%} expected ({(e.value - e.baseline) * 100:+.0f} points)"
                )
            kind = e.kind.replace("_", " ")
            message = f"watch {watch.name} {name}: {what} {kind} at {at:%Y-%m-%d %H:%M}: {size}, z={e.z:.1f}"
            candidates.append({
                "series": name, "metric": e.metric, "kind": e.kind, "episode_start": start,
                "bucket_start": at, "value": e.value, "baseline": e.baseline, "z": e.z, "message": message,
            })  # fmt: skip
    done = store.list_alerts(ctx, watch)
    window = step * (settings.cooldown or 1)
    candidates = [
        c for c in candidates
        if not any(a.series == c["series"] and a.metric == c["metric"]
                   and abs(a.episode_start - c["episode_start"]) <= window for a in done)
    ]  # fmt: skip
    if not candidates:
        return []
    for c in candidates:
        top = store.texts_in(ctx, watch, c["bucket_start"], 3, order_by_score=True)
        c["examples"] = [t.text for t in top if c["series"] in _series_of(t)][:3]
    fresh = store.save_alerts(ctx, watch, candidates, window)
    infos = [alert_info(a, watch.name) for a in fresh]
    for info in infos:
        log.warning("llmos watch alert: %s", info.message)
    webhook = (watch.settings or {}).get("webhook")
    if infos and webhook:
        store.post_webhook(webhook, {"alerts": [i.model_dump(mode="json") for i in infos]})
    return infos
