"""The base of every result model: what HTTP answers, `llmos.Client` returns and the
CLI prints with `--json`. Timestamps are aware UTC datetimes (the store keeps naive UTC),
written as ISO 8601 with their time zone, the same in every output."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer

from llmos.core.util import iso


def utc(moment: datetime) -> datetime:
    """A moment as an aware UTC datetime to the second, as it is written: what a store row
    (naive UTC) and a parsed JSON answer both become, so local and remote results are equal."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


Timestamp = Annotated[datetime, AfterValidator(utc), PlainSerializer(iso, return_type=str)]


class Result(BaseModel):
    """Attributes read from store rows (`from_attributes`), unknown keys refused."""

    model_config = ConfigDict(from_attributes=True, extra="forbid", protected_namespaces=())

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    # results read like the dicts earlier releases returned (`row["name"]`, `row.get(...)`)
    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default
