"""The detectors on generated hourly streams with a daily and weekly rhythm: clean
streams stay quiet, spikes, negative surges and level shifts are found within one bucket
of their start, once per episode, and quiet topics, warm-up and minimum volume hold."""

from __future__ import annotations

import numpy as np

from llmos.apps.watch.detect import DetectorSettings, detect, fixed_threshold

HOURS = 24 * 30
T = np.arange(HOURS)


def rhythm(base: float = 60.0) -> np.ndarray:
    """Expected texts per hour: a daily wave and quieter weekends."""
    return base * (1 + 0.6 * np.sin(2 * np.pi * (T % 24) / 24)) * np.where((T // 24) % 7 >= 5, 0.6, 1.0)


def stream(seed: int, base: float = 60.0, share: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    volume = rng.poisson(rhythm(base))
    return volume, rng.binomial(volume, share)


def test_clean_seasonal_streams_stay_quiet_where_a_fixed_threshold_does_not():
    seasonal = fixed = 0
    for seed in range(8):
        volume, negative = stream(seed)
        seasonal += len(detect(volume, negative, "hour"))
        fixed += len(fixed_threshold(volume, negative, "hour"))
    assert seasonal <= 2  # at most one false alert per topic per 30 days, over 8 topics
    assert fixed >= 4 * max(seasonal, 1)  # the daily wave alone trips a threshold without seasonality


def test_spike_surge_and_shift_are_found_within_one_bucket_and_once_each():
    rng = np.random.default_rng(11)
    volume = rng.poisson(rhythm()).astype(float)
    share = np.full(HOURS, 0.3)
    volume[300:303] *= 3  # a volume spike
    share[400:406] = 0.6  # a negative surge
    volume[500:] *= 2  # a level shift that lasts to the end
    negative = rng.binomial(volume.astype(int), share)
    found = detect(volume, negative, "hour")
    got = {(e.metric, e.start) for e in found}
    assert len(found) == 3, found
    starts = {m: s for m, s in got}
    assert abs(starts["negative_share"] - 400) <= 1
    volume_starts = sorted(s for m, s in got if m == "volume")
    assert abs(volume_starts[0] - 300) <= 1 and abs(volume_starts[1] - 500) <= 1
    # the shift lasts nine days: one episode, not an alert every evening
    assert [e.kind for e in found if e.metric == "volume" and e.start >= 499] == ["level_shift"]


def test_a_quiet_topic_does_not_alert_on_two_posts():
    rng = np.random.default_rng(3)
    volume = rng.poisson(np.full(HOURS, 1.0))
    negative = rng.binomial(volume, 0.2)
    volume[400], negative[400] = 3, 3  # two or three angry posts on a topic nobody writes about
    assert detect(volume, negative, "hour") == []


def test_warm_up_and_settings():
    rng = np.random.default_rng(5)
    volume = rng.poisson(rhythm()).astype(float)
    volume[100:103] *= 4  # inside the first week: no baseline yet
    negative = rng.binomial(volume.astype(int), 0.3)
    assert all(e.start >= 168 for e in detect(volume, negative, "hour"))
    early = detect(volume, negative, "hour", DetectorSettings(warmup=48))
    assert any(abs(e.start - 100) <= 1 for e in early)
