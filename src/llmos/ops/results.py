"""The base of every result model: what HTTP answers, `llmos.Client` returns and the
CLI prints with `--json`. Timestamps are ISO 8601 with their time zone (the store keeps
naive UTC), the same in every output."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from llmos.core.util import iso

Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]


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
