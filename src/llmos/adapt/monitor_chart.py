"""The chart of `llmos monitor`: one PNG, four panels per window (matplotlib, Agg)."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmos.adapt.monitor import DriftReport


def plot_report(report: DriftReport, path: Any) -> None:
    """Four panels per window: drift p-value, label PSI, mean confidence (KS p-value
    marked), feedback accuracy; dashed lines are the alert thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    t = report.thresholds
    xs = [w.index + 1 for w in report.windows]
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    panels = [
        ("MMD p-value (log)", [max(w.drift_p, 1e-4) for w in report.windows], t.drift_p, "drift"),
        ("label PSI", [w.psi for w in report.windows], t.psi, "labels"),
        ("mean confidence", [w.confidence for w in report.windows], None, "confidence"),
        ("feedback accuracy", [np.nan if w.accuracy is None else w.accuracy for w in report.windows],
         t.min_accuracy, "accuracy"),
    ]  # fmt: skip
    for ax, (title, values, threshold, check) in zip(axes, panels):
        ax.plot(xs, values, marker="o")
        hit = [(x, v) for x, v, w in zip(xs, values, report.windows) if check in w.alerts]
        if hit:
            ax.scatter(*zip(*hit), color="red", zorder=3, label="alert")
            ax.legend(loc="best", fontsize=8)
        if threshold is not None:
            ax.axhline(threshold, color="red", linestyle="--", linewidth=1)
        if check == "drift":
            ax.set_yscale("log")
        ax.set_ylabel(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_xlabel(f"window ({report.window} requests each)")
    axes[0].set_title(f"llmos monitor: {report.deployment} ({report.model})")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
