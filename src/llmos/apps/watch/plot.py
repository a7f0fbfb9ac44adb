"""The chart of one series of a watch: volume as bars, the share of negative texts as a
line on a second axis, each alert a red marker at its bucket (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_series(series: Any, alerts: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [p.bucket for p in series.points]
    volume = [p.volume for p in series.points]
    share = [p.share_negative if p.share_negative is not None else float("nan") for p in series.points]
    fig, ax = plt.subplots(figsize=(11, 4), dpi=100)
    width = (times[1] - times[0]) * 0.9 if len(times) > 1 else 0.02
    ax.bar(times, volume, width=width, color="#9db4d3", label="volume")
    ax.set_ylabel("texts per " + series.bucket)
    right = ax.twinx()
    right.plot(times, share, color="#c0392b", linewidth=1, label="share negative")
    right.set_ylim(0, 1)
    right.set_ylabel("share negative")
    for a in alerts:
        axis, y = (right, a.value) if a.metric == "negative_share" else (ax, a.value)
        axis.scatter([a.bucket], [y], marker="v", s=60, color="red", zorder=5)
        axis.annotate(f"#{a.alert_id}", (a.bucket, y), textcoords="offset points", xytext=(0, 6), fontsize=7)
    ax.set_title(f"watch {series.watch}: {series.series} ({len(alerts)} alerts)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
