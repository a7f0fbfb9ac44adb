"""Small synthetic data sets for the non-text tasks: tagged sentences over the tiny BERT's
vocabulary, coloured images, tabular rows, and image+text rows whose label needs both."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import FILLER, TOPICS

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 200)}


def tagged_sentences(n: int, seed: int = 0) -> pd.DataFrame:
    """Card words are single-word `thing` entities; a transfer word followed by an
    account-ish word is a two-word `pay` entity; everything else is O."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = rng.sample(FILLER, rng.randint(2, 5))
        tags = ["O"] * len(words)
        at = rng.randint(0, len(words))
        if rng.random() < 0.5:
            words[at:at] = [rng.choice(TOPICS["card"])]
            tags[at:at] = ["B-thing"]
        else:
            words[at:at] = [rng.choice(["transfer", "send", "wire"]), rng.choice(["account", "iban"])]
            tags[at:at] = ["B-pay", "I-pay"]
        rows.append({"tokens": words, "tags": tags})
    return pd.DataFrame(rows)


def save_image(path: Path, colour: str, rng: random.Random, size: int = 12) -> Path:
    """A noisy image whose dominant colour is `colour`."""
    from PIL import Image

    base = COLOURS[colour]
    img = Image.new("RGB", (size, size))
    img.putdata([tuple(max(0, min(255, c + rng.randint(-60, 60))) for c in base) for _ in range(size * size)])
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def image_folder(root: Path, per_class: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    for colour in COLOURS:
        for i in range(per_class):
            save_image(root / colour / f"{i}.png", colour, rng)
    return root


def tabular_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """`amount` and `segment` decide both the class (`tier`) and the number (`price`)."""
    rng = random.Random(seed)
    bonus = {"gold": 3.0, "silver": 0.0, "bronze": -3.0}
    rows = []
    for _ in range(n):
        amount = rng.uniform(0, 10)
        segment = rng.choice(list(bonus))
        score = amount + bonus[segment]
        rows.append(
            {
                "amount": round(amount, 3),
                "segment": segment,
                "tier": "high" if score > 5 else "low",
                "price": round(2 * amount + bonus[segment] + rng.gauss(0, 0.1), 3),
            }
        )
    return pd.DataFrame(rows)


def tabular_tiers(ws: Any, folder: Path, rows: int, train: dict[str, Any]) -> dict[str, Any]:
    """Import `rows` of `tabular_rows` as dataset `customers` (label `tier`); the spec of
    model `tiers` over its number and category inputs (no spec-wide `model`)."""
    tabular_rows(rows, seed=1).to_csv(folder / "t.csv", index=False)
    ws.import_dataset(folder / "t.csv", "customers", label="tier")
    return {
        "name": "tiers",
        "data": {"train": "customers", "split": {"test": 0.25, "seed": 0}},
        "inputs": [{"name": "amount", "type": "number"}, {"name": "segment", "type": "category"}],
        "outputs": [{"name": "tier"}],
        "train": train,
    }


def image_text_rows(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    """Red or blue images with a card or transfer sentence; the label says whether they
    match (red with card, blue with transfer): an XOR that neither input decides alone."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        colour = rng.choice(["red", "blue"])
        topic = rng.choice(["card", "transfer"])
        words = rng.sample(TOPICS[topic], 2) + rng.sample(FILLER, 2)
        rng.shuffle(words)
        path = save_image(folder / f"{seed}-{i}.png", colour, rng)
        match = (colour == "red") == (topic == "card")
        rows.append({"photo": path.name, "note": " ".join(words), "label": "yes" if match else "no"})
    return pd.DataFrame(rows)
