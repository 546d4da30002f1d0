"""AAC in MP4 (`.m4b`, the audiobook container) through PyAV, with chapters.

PyAV links its own FFmpeg, so an M4B needs no ffmpeg binary. Audio arrives in
blocks at the rate it was made; it is resampled on the way (soxr, as the other
formats are) and handed to the AAC encoder frame by frame, so a long book
never sits whole in memory. Chapters go in at mux time, where FFmpeg's MP4
muxer writes them as both a Nero `chpl` box and a QuickTime chapter track,
the two that players read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from higgs_cli.errors import AudioError

DEFAULT_M4B_RATE = 44_100  # the rate AAC players and audiobook stores expect
_MS = Fraction(1, 1000)


@dataclass(frozen=True)
class Chapter:
    """A chapter of a delivered file: seconds from the file's start, and its title."""

    start: float
    end: float
    title: str


@functools.cache
def aac_available() -> bool:
    """True when PyAV is installed and its FFmpeg has an AAC encoder and the MP4 muxer."""
    try:
        import av
    except ImportError:
        return False
    return "aac" in av.codecs_available and "ipod" in av.formats_available


def encode_m4b(path: Path, blocks: Iterable[np.ndarray], *, rate: int, bitrate_kbps: int,
               resample: Callable[[np.ndarray], np.ndarray], flush: Callable[[], np.ndarray],
               chapters: Sequence[Chapter] = (), metadata: dict[str, str] | None = None) -> int:
    """Encode mono `blocks` (already at `rate` after `resample`) into `path`; return the frames written.

    `path` is a temporary name the caller renames into place; on any error it may hold a partial file.
    """
    if not aac_available():
        raise AudioError("cannot write an M4B: PyAV (the `av` package) with an AAC encoder is not installed",
                         hint="reinstall higgs (pip install higgs-cli) to get its dependencies")
    import av

    written = 0
    try:
        with av.open(str(path), "w", format="ipod") as container:
            stream = container.add_stream("aac", rate=rate, layout="mono")
            stream.bit_rate = int(bitrate_kbps) * 1000
            for key, value in (metadata or {}).items():
                container.metadata[key] = value
            if chapters:
                container.set_chapters([
                    {"id": i + 1, "start": round(c.start * 1000), "end": round(c.end * 1000), "time_base": _MS,
                     "metadata": {"title": c.title}} for i, c in enumerate(chapters)])

            def push(samples: np.ndarray | None) -> None:
                nonlocal written
                if samples is None:
                    frame = None
                else:
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32).reshape(1, -1),
                                                       format="fltp", layout="mono")
                    frame.sample_rate, frame.pts = rate, written
                    written += samples.size
                for packet in stream.encode(frame):
                    container.mux(packet)

            for block in blocks:
                data = np.asarray(block, dtype=np.float32)
                if not np.isfinite(data).all():
                    raise AudioError(f"cannot write {path.name}: the audio contains NaN or infinite samples")
                if data.size:
                    push(np.clip(resample(data), -1.0, 1.0))
            tail = flush()
            if tail.size:
                push(np.clip(tail, -1.0, 1.0))
            if not written:
                raise AudioError(f"nothing to write to {path.name}: the audio is empty")
            push(None)
    except av.FFmpegError as error:
        raise AudioError(f"could not encode {path.name} as AAC: {error}") from None
    return written
