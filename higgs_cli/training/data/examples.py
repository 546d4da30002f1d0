"""Prepared training data: the examples, the held-out validation split and the data's digest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from higgs_cli.training.data.report import PrepareReport

DIGEST_VERSION = b"higgs-train-data-1"  # change when what the digest covers changes


@dataclass(frozen=True)
class Example:
    """One training clip: the transcript as the model will read it and the clip's audio codes.

    `codes` is (frames, codebooks), integers: the transpose of what `session.encode_audio` returns
    ((codebooks, frames)), undelayed (the delay pattern is the trainer's)."""

    text: str
    codes: np.ndarray
    seconds: float
    source: str  # the file (a sheet: its line), and the cut's span for a long recording

    @property
    def frames(self) -> int:
        return int(self.codes.shape[0])


@dataclass(frozen=True)
class PreparedData:
    """What `prepare_data` returns: the train and validation examples, the report, the digest."""

    train: list[Example]
    validation: list[Example]
    report: PrepareReport
    digest: str  # sha256 over the examples (split, texts, codes): identifies the data in a training manifest


def validation_indexes(count: int, fraction: float, seed: int) -> set[int]:
    """Which of `count` examples (in a fixed order) are held out: round(fraction x count), at least one
    when there are two or more and fraction > 0, never all; chosen by `seed` alone."""
    if count < 2 or fraction <= 0:
        return set()
    held = min(count - 1, max(1, round(fraction * count)))
    order = np.random.default_rng(seed).permutation(count)
    return {int(i) for i in order[:held]}


def digest(train: Sequence[Example], validation: Sequence[Example]) -> str:
    """sha256 over both splits' texts and codes (shape, dtype-independent int64 little-endian values)."""
    h = hashlib.sha256(DIGEST_VERSION)
    for split, examples in ((b"train", train), (b"validation", validation)):
        h.update(b"\0split\0" + split + len(examples).to_bytes(8, "little"))
        for example in examples:
            text = example.text.encode("utf-8")
            codes = np.ascontiguousarray(example.codes, dtype="<i8")
            h.update(len(text).to_bytes(8, "little") + text)
            h.update(np.asarray(codes.shape, dtype="<i8").tobytes() + codes.tobytes())
    return h.hexdigest()
