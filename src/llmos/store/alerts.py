"""Monitoring alerts: one row per threshold crossed by one window of served traffic."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from llmos.store.db import Store, insert_unrecorded
from llmos.store.schema import MonitorAlert


def save_alerts(store: Store, alerts: list[MonitorAlert]) -> list[MonitorAlert]:
    """Insert the alerts not recorded yet (same deployment, check and window); return those."""

    def recorded(session: Session, alert: MonitorAlert) -> bool:
        return (
            session.scalar(
                select(MonitorAlert.id).where(
                    MonitorAlert.deployment == alert.deployment,
                    MonitorAlert.check == alert.check,
                    MonitorAlert.window_end == alert.window_end,
                )
            )
            is not None
        )

    return insert_unrecorded(store, alerts, recorded)


def list_alerts(store: Store, deployment: str | None = None, limit: int | None = None) -> list[MonitorAlert]:
    """Alerts oldest first, of one deployment or all; with `limit`, the newest N of them."""
    with store.read() as session:
        query = select(MonitorAlert).order_by(MonitorAlert.id.desc())
        if deployment is not None:
            query = query.where(MonitorAlert.deployment == deployment)
        if limit is not None:
            query = query.limit(limit)
        return list(session.scalars(query))[::-1]
