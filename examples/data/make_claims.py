"""Writes `claims.csv`: 400 synthetic insurance claims for the tabular and multimodal examples.

Each claim has a free-text description, an amount, the days it took to report it and
the customer segment. Whether it is `flagged` depends on all four (a missing receipt is
only in the text); the `payout` depends on the amount, the segment and the receipt.
Synthetic, so it ships with llmos under its licence. Run from the repository root:
    python examples/data/make_claims.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

ITEMS = ["laptop", "bicycle", "phone", "camera", "watch", "guitar", "tablet", "suitcase"]
RECEIPT = ["receipt attached", "invoice included", "proof of purchase enclosed"]
NO_RECEIPT = ["no receipt available", "lost the invoice", "cannot find proof of purchase"]
EVENTS = ["stolen from the car", "damaged in transit", "broken during a move", "lost on holiday"]
SEGMENT_RISK = {"gold": -2.0, "standard": 0.0, "new": 2.0}
SEGMENT_RATE = {"gold": 0.9, "standard": 0.8, "new": 0.7}


def main() -> None:
    rng = random.Random(7)
    rows = []
    for _ in range(400):
        receipt = rng.random() < 0.5
        item, event = rng.choice(ITEMS), rng.choice(EVENTS)
        note = rng.choice(RECEIPT if receipt else NO_RECEIPT)
        amount = round(rng.uniform(100, 8000), 2)
        days = rng.randint(0, 60)
        segment = rng.choice(list(SEGMENT_RISK))
        risk = amount / 1000 + 3 * (days > 30) + 3 * (not receipt) + SEGMENT_RISK[segment]
        payout = amount * SEGMENT_RATE[segment] - (150 if not receipt else 0) + rng.gauss(0, 20)
        rows.append(
            {
                "description": f"My {item} was {event}, {note}.",
                "amount": amount,
                "days_to_report": days,
                "segment": segment,
                "decision": "flagged" if risk > 6 else "approved",
                "payout": round(max(payout, 0.0), 2),
            }
        )
    path = Path(__file__).with_name("claims.csv")
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
