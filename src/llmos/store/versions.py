"""Versioned rows (`NAME@V`): lookup, listing and the next version number.

Datasets, models and prediction sets are all immutable versions under a name; this module is the one
place that knows how `NAME` (latest) and `NAME@V` resolve.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from llmos.core.util import parse_ref
from llmos.store.db import Store
from llmos.store.schema import DatasetVersion, ModelVersion, PredictionSet

Row = TypeVar("Row", DatasetVersion, ModelVersion, PredictionSet)


def find_version(store: Store, table: type[Row], ref: str, what: str) -> Row | None:
    """The row `ref` names (the latest version when it has none), or None."""
    name, version = parse_ref(ref, what)
    with store.read() as session:
        query = select(table).where(table.name == name)
        if version is None:
            query = query.order_by(table.version.desc())
        else:
            query = query.where(table.version == version)
        return session.scalars(query).first()


def list_versions(
    store: Store, table: type[Row], name: str | None = None, limit: int | None = None, offset: int = 0
) -> list[Row]:
    """Versions by name then version; `limit`/`offset` page in the database (a page of a
    registry of thousands reads only its rows)."""
    with store.read() as session:
        query = select(table).order_by(table.name, table.version)
        if name:
            query = query.where(table.name == name)
        if offset:
            query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return list(session.scalars(query))


def known_names(store: Store, table: type[Row]) -> str:
    """Names for a 'not found' message: 'a, b' or 'none yet'."""
    return ", ".join(sorted({row.name for row in list_versions(store, table)})) or "none yet"


def next_version(session: Session, table: type[Row], name: str) -> int:
    latest = session.scalar(select(func.max(table.version)).where(table.name == name))
    return (latest or 0) + 1
