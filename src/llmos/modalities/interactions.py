"""The `interactions` input: (user, item, optional rating or weight, optional timestamp)
rows, checked and turned into index arrays over a user and an item vocabulary; and the
item feature table that goes with them.

Checks, each one line naming what is wrong: a missing user/item/rating/timestamp column
(named), empty ids, a rating outside the declared `scale` (how many, the first row),
ratings or timestamps that are not numbers. Duplicate (user, item) rows are not an
error: the latest one is kept and the count reported (`report`), as are rows dropped by
`min_rating`. An item table's rows for items without interactions are counted and
reported; its own duplicate ids are an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.base import InputDriver, input_driver


@dataclass
class Interactions:
    """Checked interactions as index arrays (row order: by time when there is a timestamp)."""

    users: np.ndarray  # int32 index into the driver's `users`
    items: np.ndarray  # int32 index into the driver's `items`
    weights: np.ndarray  # float32; 1 without a rating column
    times: np.ndarray | None  # float64 seconds (or any increasing number), or None
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> Interactions:
        return Interactions(
            self.users[mask],
            self.items[mask],
            self.weights[mask],
            None if self.times is None else self.times[mask],
            self.report,
        )


@input_driver("interactions")
class InteractionsDriver(InputDriver):
    type_name = "interactions"

    def __init__(
        self,
        column: str = "interactions",
        user: str = "user",
        item: str = "item",
        rating: str | None = None,
        timestamp: str | None = None,
        scale: Sequence[float] | None = None,
        min_rating: float | None = None,
        users: list[str] | None = None,
        items: list[str] | None = None,
    ) -> None:
        super().__init__(column)
        self.user, self.item, self.rating, self.timestamp = user, item, rating, timestamp
        self.scale = tuple(scale) if scale is not None else None
        self.min_rating = min_rating
        self.users: list[str] = users or []
        self.items: list[str] = items or []
        self._index()

    @classmethod
    def from_spec(cls, feature: Any) -> InteractionsDriver:
        return cls(
            feature.name,
            feature.user,
            feature.item,
            feature.rating,
            feature.timestamp,
            feature.scale,
            feature.min_rating,
        )

    def _index(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {v: i for i, v in enumerate(self.items)}

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.user, self.item, self.rating, self.timestamp) if c]

    def check_column(self, frame: pd.DataFrame, source: str) -> None:
        named = [
            ("user", self.user),
            ("item", self.item),
            ("rating", self.rating),
            ("timestamp", self.timestamp),
        ]
        for what, column in named:
            if column and column not in frame.columns:
                raise DataError(
                    f"{source}: {what} column {column!r} not found; "
                    f"columns are {', '.join(map(str, frame.columns))}"
                )

    def read(self, frame: pd.DataFrame, source: str) -> pd.DataFrame:
        """The checked rows as a frame of user, item (strings), weight and time columns,
        duplicates removed (the latest kept); the counts go to `frame.attrs["report"]`."""
        self.check_column(frame, source)
        out = pd.DataFrame({"user": _ids(frame, self.user, source), "item": _ids(frame, self.item, source)})
        report: dict[str, Any] = {"rows": len(frame)}
        if self.rating:
            ratings = _numbers(frame, self.rating, source)
            if self.scale is not None:
                low, high = self.scale
                bad = np.flatnonzero((ratings < low) | (ratings > high))
                if len(bad):
                    raise DataError(
                        f"{source}: {len(bad)} ratings in column {self.rating!r} are outside the declared "
                        f"scale [{low:g}, {high:g}] (first at row {int(bad[0]) + 1}: {ratings[bad[0]]:g})"
                    )
            out["weight"] = ratings.astype(np.float32)
        else:
            out["weight"] = np.float32(1.0)
        if self.timestamp:
            out["time"] = _times(frame, self.timestamp, source)
        order = out.sort_values("time", kind="stable") if self.timestamp else out
        deduped = order.drop_duplicates(["user", "item"], keep="last")
        report["duplicates"] = len(out) - len(deduped)
        if self.min_rating is not None and self.rating:
            kept = deduped[deduped["weight"] >= self.min_rating]
            report["below_min_rating"] = len(deduped) - len(kept)
            deduped = kept
        if deduped.empty:
            raise DataError(f"{source}: no interactions left to learn from")
        report["interactions"] = len(deduped)
        deduped = deduped.reset_index(drop=True)
        deduped.attrs["report"] = report
        return deduped

    def fit(self, values: pd.DataFrame) -> None:
        """The user and item vocabularies, from checked rows (`read`)."""
        self.users = sorted(values["user"].unique().tolist())
        self.items = sorted(values["item"].unique().tolist())
        self._index()

    def add_items(self, ids: Sequence[str]) -> None:
        """Items known from the item table only (no interactions yet: cold start)."""
        for item in ids:
            if item not in self.item_index:
                self.item_index[item] = len(self.items)
                self.items.append(item)

    def arrays(self, rows: pd.DataFrame) -> Interactions:
        """Index arrays of checked rows; rows of users or items outside the vocabulary are left out."""
        u = rows["user"].map(self.user_index)
        i = rows["item"].map(self.item_index)
        known = (u.notna() & i.notna()).to_numpy()
        times = rows["time"].to_numpy(np.float64)[known] if "time" in rows else None
        return Interactions(
            u.to_numpy()[known].astype(np.int32),
            i.to_numpy()[known].astype(np.int32),
            rows["weight"].to_numpy(np.float32)[known],
            times,
            dict(rows.attrs.get("report", {})),
        )

    # the InputDriver interface: the recommender models read whole interaction arrays
    def encode(self, values: Sequence[Any]) -> list[Any]:
        return [self.item_index.get(str(v), -1) for v in values]

    def length(self, feature: Any) -> int:
        return 1

    def collate(self, features: Sequence[Any]) -> dict[str, Any]:
        import torch

        return {"items": torch.tensor(list(features), dtype=torch.long)}

    def state(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "column": self.column,
            "user": self.user,
            "item": self.item,
            "rating": self.rating,
            "timestamp": self.timestamp,
            "scale": list(self.scale) if self.scale else None,
            "min_rating": self.min_rating,
        }


def _ids(frame: pd.DataFrame, column: str, source: str) -> pd.Series:
    values = frame[column]
    empty = int(values.isna().sum() + (values.astype(str).str.strip() == "").sum())
    if empty:
        raise DataError(f"{source}: column {column!r} has {empty} empty ids; fill or drop those rows")
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        values = values.astype("int64")  # 12.0 -> "12": ids read as floats
    return values.astype(str).str.strip()


def _numbers(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{source}: {len(bad)} values in column {column!r} are not numbers "
            f"(first at row {int(bad[0]) + 1}: {frame[column].iloc[bad[0]]!r})"
        )
    return values.to_numpy(np.float64)


def _times(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        return _numbers(frame, column, source)
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{source}: {len(bad)} values in column {column!r} are neither numbers nor dates "
            f"(first at row {int(bad[0]) + 1}: {values.iloc[bad[0]]!r})"
        )
    return (parsed.astype("int64") / 1e9).to_numpy(np.float64)


def read_item_table(
    frame: pd.DataFrame, id_column: str, columns: Sequence[str], known: set[str], source: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The item table indexed by item id (string), its feature `columns` as strings or
    numbers; the report counts the items it holds that no interaction names."""
    for column in (id_column, *columns):
        if column not in frame.columns:
            names = ", ".join(map(str, frame.columns))
            raise DataError(f"{source}: item column {column!r} not found; columns are {names}")
    ids = _ids(frame, id_column, source)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise DataError(
            f"{source}: {len(repeated)} item ids appear twice in column {id_column!r} "
            f"(first: {repeated.iloc[0]!r}); keep one row per item"
        )
    table = frame[list(columns)].copy()
    table.index = pd.Index(ids.tolist(), name="item")
    unknown = int((~table.index.isin(list(known))).sum())
    missing = len(known - set(table.index))
    return table, {"items": len(table), "unknown_items": unknown, "items_without_features": missing}
