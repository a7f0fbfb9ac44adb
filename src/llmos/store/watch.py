"""Opinion watches (F11) in the metadata database: the watch rows, their texts, the series
buckets counted from them, file offsets and alerts. Every ingest is one transaction: the
texts, the bucket counts they add to and the file offset they move commit together, so
an acknowledged batch is counted exactly once and a failed one leaves nothing behind.
Queries filter by project."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from llmos.core.errors import NotFoundError, UsageError
from llmos.core.util import utcnow
from llmos.store.db import Store, insert_unrecorded
from llmos.store.schema import Watch, WatchAlert, WatchBucket, WatchSource, WatchText


def add_watch(store: Store, project: str, **values: Any) -> Watch:
    with store.transaction() as session:
        if session.scalar(select(Watch.id).where(Watch.project == project, Watch.name == values["name"])):
            raise UsageError(f"watch {values['name']!r} exists already")
        row = Watch(project=project, **values)
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def get_watch(store: Store, project: str, name: str) -> Watch:
    with store.read() as session:
        row = session.scalar(select(Watch).where(Watch.project == project, Watch.name == name))
        if row is None:
            raise NotFoundError(
                f"no watch {name!r}: create it with `llmos watch create {name} --classifier D`"
            )
        return row


def list_watches(store: Store, project: str) -> list[Watch]:
    with store.read() as session:
        return list(session.scalars(select(Watch).where(Watch.project == project).order_by(Watch.name)))


def known_client_ids(store: Store, watch_id: int, ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(ids))
    found: set[str] = set()
    with store.read() as session:
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            found |= set(
                session.scalars(
                    select(WatchText.client_id).where(
                        WatchText.watch_id == watch_id, WatchText.client_id.in_(chunk)
                    )
                )
            )
    return found


def source_offset(store: Store, watch_id: int, path: str) -> tuple[int, int]:
    """(bytes read, rows read) of a file by this watch so far."""
    with store.read() as session:
        row = session.scalar(
            select(WatchSource).where(WatchSource.watch_id == watch_id, WatchSource.path == path)
        )
        return (row.offset, row.rows) if row is not None else (0, 0)


def store_texts(
    store: Store,
    watch: Watch,
    texts: list[dict[str, Any]],
    source: tuple[str, int, int] | None = None,
) -> tuple[int, int]:
    """Insert scored texts (dicts of WatchText fields plus `series`, the list of series
    each counts in) and add them to their buckets; with `source` (path, new offset, rows
    read), move that file's offset. One transaction. Texts whose client id is already
    stored are skipped: returns (stored, duplicates)."""
    with store.transaction() as session:
        ids = [t["client_id"] for t in texts if t.get("client_id") is not None]
        seen: set[str] = set()
        if ids:
            for i in range(0, len(ids), 500):
                seen |= set(
                    session.scalars(
                        select(WatchText.client_id).where(
                            WatchText.watch_id == watch.id, WatchText.client_id.in_(ids[i : i + 500])
                        )
                    )
                )
        counts: dict[tuple[str, datetime], list[float]] = defaultdict(lambda: [0, 0, 0.0])
        stored = duplicates = 0
        fresh: list[dict[str, Any]] = []
        for t in texts:
            cid = t.get("client_id")
            if cid is not None and cid in seen:
                duplicates += 1
                continue
            if cid is not None:
                seen.add(cid)
            fresh.append({k: v for k, v in t.items() if k != "series"})
            for series in t["series"]:
                c = counts[(series, t["bucket_start"])]
                c[0] += 1
                c[1] += int(t["negative"])
                c[2] += t["score"]
            stored += 1
        if fresh:  # one multi-row INSERT, not an ORM object per text
            now = utcnow()
            session.execute(
                insert(WatchText),
                [{"project": watch.project, "watch_id": watch.id, "created_at": now, **f} for f in fresh],
            )
        if counts:
            keys = list(counts)
            existing = {
                (b.series, b.bucket_start): b
                for b in session.scalars(
                    select(WatchBucket).where(
                        WatchBucket.watch_id == watch.id,
                        WatchBucket.series.in_({s for s, _ in keys}),
                        WatchBucket.bucket_start.in_({b for _, b in keys}),
                    )
                )
            }
            for key, (volume, negative, score) in counts.items():
                row = existing.get(key)
                if row is None:
                    session.add(
                        WatchBucket(
                            project=watch.project, watch_id=watch.id, series=key[0], bucket_start=key[1],
                            volume=int(volume), negative=int(negative), score_sum=float(score),
                        )
                    )  # fmt: skip
                else:
                    row.volume += int(volume)
                    row.negative += int(negative)
                    row.score_sum += float(score)
        if source is not None:
            path, offset, rows = source
            read = session.scalar(
                select(WatchSource).where(WatchSource.watch_id == watch.id, WatchSource.path == path)
            )
            if read is None:
                session.add(
                    WatchSource(project=watch.project, watch_id=watch.id, path=path, offset=offset, rows=rows)
                )
            else:
                read.offset, read.rows, read.updated_at = offset, read.rows + rows, utcnow()
        return stored, duplicates


def buckets(store: Store, watch_id: int, series: str | None = None) -> list[WatchBucket]:
    """The buckets of a watch (of one series), by series then time."""
    with store.read() as session:
        query = select(WatchBucket).where(WatchBucket.watch_id == watch_id)
        if series is not None:
            query = query.where(WatchBucket.series == series)
        return list(session.scalars(query.order_by(WatchBucket.series, WatchBucket.bucket_start)))


def series_names(store: Store, watch_id: int) -> list[str]:
    with store.read() as session:
        return sorted(
            session.scalars(select(WatchBucket.series).where(WatchBucket.watch_id == watch_id).distinct())
        )


def texts_in(
    store: Store, watch_id: int, start: datetime | None = None, limit: int = 50, order_by_score: bool = False
) -> list[WatchText]:
    """The texts of one bucket (or the newest ones), most negative first with `order_by_score`."""
    with store.read() as session:
        query = select(WatchText).where(WatchText.watch_id == watch_id)
        if start is not None:
            query = query.where(WatchText.bucket_start == start)
        if order_by_score:
            query = query.order_by(WatchText.score.desc(), WatchText.id)
        else:
            query = query.order_by(WatchText.ts.desc(), WatchText.id.desc())
        return list(session.scalars(query.limit(limit * 20 if start is not None else limit)))


def text_count(store: Store, watch_id: int) -> tuple[int, datetime | None, datetime | None]:
    with store.read() as session:
        n, first, last = session.execute(
            select(func.count(WatchText.id), func.min(WatchText.ts), func.max(WatchText.ts)).where(
                WatchText.watch_id == watch_id
            )
        ).one()
        return int(n), first, last


def save_alerts(store: Store, alerts: list[WatchAlert], cooldown: Any) -> list[WatchAlert]:
    """Insert the alerts whose episode is not recorded yet (the same series and metric
    with an episode starting within `cooldown`, a timedelta, counts as the same one)."""

    def recorded(session: Session, alert: WatchAlert) -> bool:
        return (
            session.scalar(
                select(WatchAlert.id).where(
                    WatchAlert.watch_id == alert.watch_id,
                    WatchAlert.series == alert.series,
                    WatchAlert.metric == alert.metric,
                    WatchAlert.episode_start >= alert.episode_start - cooldown,
                    WatchAlert.episode_start <= alert.episode_start + cooldown,
                )
            )
            is not None
        )

    return insert_unrecorded(store, alerts, recorded)


def list_alerts(store: Store, watch_id: int, open_only: bool = False) -> list[WatchAlert]:
    with store.read() as session:
        query = select(WatchAlert).where(WatchAlert.watch_id == watch_id)
        if open_only:
            query = query.where(WatchAlert.acked_at.is_(None))
        return list(session.scalars(query.order_by(WatchAlert.id)))


def ack_alert(store: Store, watch_id: int, alert_id: int, actor: str) -> WatchAlert:
    with store.transaction() as session:
        row = session.scalar(
            select(WatchAlert).where(WatchAlert.watch_id == watch_id, WatchAlert.id == alert_id)
        )
        if row is None:
            raise NotFoundError(f"no alert {alert_id} on this watch: see `llmos watch alerts NAME`")
        if row.acked_at is None:
            row.acked_by, row.acked_at = actor, utcnow()
        session.flush()
        session.expunge(row)
        return row


def sources(store: Store, watch_id: int) -> dict[str, int]:
    """File -> rows read, of every file a watch reads."""
    with store.read() as session:
        return {
            r.path: r.rows
            for r in session.scalars(
                select(WatchSource).where(WatchSource.watch_id == watch_id).order_by(WatchSource.path)
            )
        }
