"""Which rows each step trains on: a function of (seed, step) alone, so a resumed run, or one
process of several, takes the same rows as the uninterrupted run. No torch."""

from __future__ import annotations

import numpy as np


def epoch_order(seed: int, epoch: int, rows: int) -> np.ndarray:
    """A permutation of the rows for one pass over them."""
    return np.random.default_rng([seed, epoch]).permutation(rows)


def step_rows(seed: int, step: int, batch_size: int, rows: int) -> list[int]:
    """The rows of optimizer step `step`: the next `batch_size` of an endless sequence of epochs,
    each a fresh permutation (a batch may span two epochs)."""
    start = step * batch_size
    out: list[int] = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), rows)
        order = epoch_order(seed, epoch, rows)
        out.extend(order[offset:offset + batch_size - len(out)].tolist())
    return out


def micro_batches(indexes: list[int], lengths: list[int], micro_batch: int) -> list[list[int]]:
    """A step's rows in micro-batches of rows of similar length (less padding), longest first, so
    that a batch too big for memory fails on its first pass."""
    ordered = sorted(indexes, key=lambda i: (-lengths[i], i))
    return [ordered[i:i + micro_batch] for i in range(0, len(ordered), micro_batch)]
