"""The evaluation gate: a candidate replaces the deployed model only when it is better on
held-out new feedback and no worse than a tolerance on the frozen original test set.

A pure function of the two models' metrics, so the rule is testable on its own and the
recorded reasons say exactly which comparison decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GateResult:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def gate(parent: dict[str, Any], candidate: dict[str, Any], tolerance: float) -> GateResult:
    """`parent` and `candidate` hold `original_accuracy` (frozen original test set) and
    `feedback_accuracy` (held-out feedback), as fractions; `tolerance` is in points."""
    old_a, new_a = 100 * parent["original_accuracy"], 100 * candidate["original_accuracy"]
    old_b, new_b = 100 * parent["feedback_accuracy"], 100 * candidate["feedback_accuracy"]
    better = new_b > old_b
    kept = new_a >= old_a - tolerance
    reasons = [
        f"held-out feedback accuracy {old_b:.1f} -> {new_b:.1f} "
        + ("(better)" if better else "(not better: must rise)"),
        f"original test accuracy {old_a:.1f} -> {new_a:.1f} "
        + (f"(within {tolerance:g} points)" if kept else f"(dropped more than {tolerance:g} points)"),
    ]
    return GateResult(better and kept, reasons)
