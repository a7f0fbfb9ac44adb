"""Batches of row indices: length-grouped for training, length-sorted for inference.

Dynamic padding pads each batch to its longest row; grouping rows of similar length
makes that longest row close to the rest, so little compute is spent on padding. The
training order stays random: shuffle, cut into mega-batches of 50 batches, sort each by
length, cut into batches, shuffle the batches (the recipe of HF's LengthGroupedSampler).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

MEGA_BATCHES = 50


def training_batches(
    lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = True
) -> list[list[int]]:
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * MEGA_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def inference_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Rows sorted by length into batches; callers put results back by index.

    With `max_tokens`, a batch also ends before its padded size (rows x longest row)
    would pass that many tokens: short rows travel in large batches, long ones in small
    ones. On a CPU the cost of a batch is its padded size, so a request mix of short and
    long texts runs up to twice as fast as in fixed-size batches (see bench_serve.py).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if max_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:  # ascending, so row i is the longest of the batch it joins
        if batch and (len(batch) == batch_size or (len(batch) + 1) * lengths[i] > max_tokens):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches
