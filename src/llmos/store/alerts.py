"""Monitoring alerts: one row per threshold crossed by one window of served traffic."""

from __future__ import annotations

from sqlalchemy import select

from llmos.store.db import Store
from llmos.store.schema import MonitorAlert


def save_alerts(store: Store, alerts: list[MonitorAlert]) -> list[MonitorAlert]:
    """Insert the alerts not recorded yet (same deployment, check and window); return those."""
    if not alerts:
        return []
    fresh = []
    with store.transaction() as session:
        for alert in alerts:
            seen = session.scalar(
                select(MonitorAlert.id).where(
                    MonitorAlert.deployment == alert.deployment,
                    MonitorAlert.check == alert.check,
                    MonitorAlert.window_end == alert.window_end,
                )
            )
            if seen is None:
                session.add(alert)
                fresh.append(alert)
        session.flush()
    return fresh


def list_alerts(store: Store, deployment: str | None = None, limit: int | None = None) -> list[MonitorAlert]:
    """Alerts oldest first, of one deployment or all; with `limit`, the newest N of them."""
    with store.read() as session:
        query = select(MonitorAlert).order_by(MonitorAlert.id.desc())
        if deployment is not None:
            query = query.where(MonitorAlert.deployment == deployment)
        if limit is not None:
            query = query.limit(limit)
        return list(session.scalars(query))[::-1]
