"""Turn generated clips into one finished track: trim, join with pauses, master.

Every function takes and returns float32 mono at SAMPLE_RATE unless told
otherwise. Timings are counted in samples, so subtitles made from
`assemble`'s spans line up with the audio exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import AudioError

_TRIM_FRAME = 1024
_TRIM_HOP = 256
_LIMITER_RADIUS_S = 0.005  # the gain moves over 2 x 5 ms: quick enough for peaks, slow enough not to buzz


def trim_silence(audio: np.ndarray, *, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing audio quieter than `top_db` below the loudest frame.

    Silence inside the clip is kept. All-silent input gives an empty array.
    """
    x = _mono(audio)
    if x.size == 0:
        return x
    half = _TRIM_FRAME // 2
    padded = np.pad(x.astype(np.float64), half)
    energy = np.concatenate(([0.0], np.cumsum(padded * padded)))
    starts = np.arange(0, x.size, _TRIM_HOP)
    ends = np.minimum(starts + _TRIM_FRAME, padded.size)
    rms = np.sqrt(np.maximum(energy[ends] - energy[starts], 0.0) / _TRIM_FRAME)
    loudest = rms.max()
    if loudest <= 0.0:
        return x[:0]
    loud = np.flatnonzero(rms > loudest * 10.0 ** (-top_db / 20.0))
    start = int(loud[0]) * _TRIM_HOP
    end = min(x.size, (int(loud[-1]) + 1) * _TRIM_HOP)
    return x[start:end].copy()


def assemble(clips: list[np.ndarray], pauses: list[float], *, crossfade_ms: float = 10.0,
             sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Join `clips` into one track and return it with each clip's (start_s, end_s) in it.

    `pauses[i]` is what follows clip i: seconds of silence when positive; when 0
    or negative the next clip overlaps this one by crossfade_ms (or by -pause
    seconds when that is longer) and the two are mixed. Give len(clips) - 1
    pauses, or len(clips) to add silence after the last clip too. Each clip
    edge gets a crossfade_ms fade so joins do not click. Overlaps are summed,
    not limited: run `master` on the result.
    """
    pieces: list[np.ndarray] = []
    _, spans = assemble_stream(clips, len(clips), pauses, lambda piece: pieces.append(piece.copy()),
                               crossfade_ms=crossfade_ms, sample_rate=sample_rate)
    track = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return track, spans


def assemble_stream(clips: Iterable[np.ndarray], count: int, pauses: Sequence[float],
                    sink: Callable[[np.ndarray], None], *, crossfade_ms: float = 10.0,
                    sample_rate: int = SAMPLE_RATE) -> tuple[int, list[tuple[float, float]]]:
    """`assemble` for tracks too long to hold: the `count` clips are taken one at a time
    and the track is handed to `sink` in order, piece by piece, so memory holds one
    clip and what overlaps it. Returns the track's length in samples and the spans.
    """
    if count and len(pauses) not in (count - 1, count):
        raise ValueError(f"{count} clips need {count - 1} or {count} pauses, got {len(pauses)}")
    fade = max(0, round(crossfade_ms * sample_rate / 1000.0))
    buffer = np.zeros(0, dtype=np.float32)  # the track's samples [base, base + buffer.size), not yet final
    base = cursor = furthest = 0
    spans: list[tuple[float, float]] = []

    def emit(upto: int) -> None:  # everything before `upto` is final
        nonlocal buffer, base
        take = min(upto - base, buffer.size)
        if take > 0:
            sink(buffer[:take])
            buffer, base = buffer[take:].copy(), base + take
        while base < upto:  # silence beyond the buffer
            gap = np.zeros(min(upto - base, 1 << 20), dtype=np.float32)
            sink(gap)
            base += gap.size

    for i, clip in enumerate(clips):
        if i >= count:
            raise ValueError(f"more than {count} clips")
        clip = _faded(_mono(clip), fade)
        start = cursor
        end = start + clip.size
        pause = pauses[i] if i < len(pauses) else 0.0
        if not math.isfinite(pause):
            raise ValueError(f"pause {i} is not a number: {pause}")
        if pause > 0:
            cursor = end + round(pause * sample_rate)
        elif i < count - 1:
            overlap = max(fade, round(-pause * sample_rate))
            cursor = end - min(overlap, clip.size)
        else:
            cursor = end
        if end - base > buffer.size:
            buffer = np.concatenate([buffer, np.zeros(end - base - buffer.size, dtype=np.float32)])
        buffer[start - base:end - base] += clip
        furthest = max(furthest, end)
        spans.append((start / sample_rate, end / sample_rate))
        emit(cursor)  # later clips start at `cursor` or after it
    if len(spans) != count:
        raise ValueError(f"expected {count} clips, got {len(spans)}")
    total = max(cursor, furthest)
    emit(total)
    return total, spans


def _faded(clip: np.ndarray, fade: int) -> np.ndarray:
    n = min(fade, clip.size // 2)
    if n == 0:
        return clip
    clip = clip.copy()
    ramp = (np.arange(n, dtype=np.float32) + 0.5) / n
    clip[:n] *= ramp
    clip[-n:] *= ramp[::-1]
    return clip


def measure_loudness(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Integrated loudness in LUFS (ITU-R BS.1770); None when too short (< 400 ms) or silent."""
    x = _mono(audio).astype(np.float64)
    if x.size < round(0.4 * sample_rate):
        return None
    import pyloudnorm

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def master(audio: np.ndarray, *, loudness: float = -16.0, peak_db: float = -1.0,
           sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Normalize to `loudness` LUFS, then limit so no sample exceeds `peak_db` dBFS.

    Audio too short or too quiet to measure keeps its level and is only limited.
    """
    x = _mono(audio)
    if x.size == 0:
        return x.astype(np.float32)
    if not np.isfinite(x).all():
        raise AudioError("cannot master audio that contains NaN or infinite samples")
    meter = LoudnessMeter(sample_rate)
    meter.add(x)
    blocks = master_blocks(lambda lo, hi: x[lo:hi], x.size, gain=meter.gain_to(loudness), peak_db=peak_db,
                           sample_rate=sample_rate)
    return np.concatenate(list(blocks))


class LoudnessMeter:
    """Integrated loudness (ITU-R BS.1770, as `measure_loudness`) of audio fed in pieces of any size.

    The K-weighting filters keep their state from piece to piece, and only the
    filtered energy of each 100 ms step is kept, so a track of hours costs a few
    hundred kilobytes.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        import pyloudnorm
        from scipy.signal import lfilter

        self._lfilter = lfilter
        self.sample_rate = sample_rate
        self._stages = [[f.passband_gain, f.b, f.a, np.zeros(max(len(f.a), len(f.b)) - 1)]
                        for f in pyloudnorm.Meter(sample_rate)._filters.values()]
        self._step = round(0.1 * sample_rate)  # gating blocks are 4 steps long and 1 step apart
        self._steps: list[np.ndarray] = []
        self._rest = np.zeros(0)
        self.samples = 0

    def add(self, audio: np.ndarray) -> None:
        x = np.asarray(audio, dtype=np.float64)
        self.samples += x.size
        for stage in self._stages:
            gain, b, a, state = stage
            x, stage[3] = self._lfilter(b, a, x, zi=state)
            x = gain * x
        energy = np.concatenate([self._rest, x * x])
        whole = energy.size // self._step * self._step
        if whole:
            self._steps.append(energy[:whole].reshape(-1, self._step).sum(axis=1))
        self._rest = energy[whole:]

    def integrated(self) -> float | None:
        """LUFS of everything added; None when shorter than 400 ms or silent."""
        if self.samples < round(0.4 * self.sample_rate):
            return None
        steps = np.concatenate([*self._steps, [self._rest.sum()] if self._rest.size else []])
        blocks = int(np.round((self.samples / self.sample_rate - 0.4) / 0.1)) + 1
        sums = np.concatenate([[0.0], np.cumsum(steps)])
        first = np.arange(blocks)
        z = (sums[np.minimum(first + 4, steps.size)] - sums[first]) / (0.4 * self.sample_rate)
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10.0 * np.log10(z)
        gated = z[block_lufs >= -70.0]
        if gated.size == 0:
            return None
        relative = -0.691 + 10.0 * np.log10(gated.mean()) - 10.0
        gated = z[(block_lufs > relative) & (block_lufs > -70.0)]
        if gated.size == 0:
            return None
        value = float(-0.691 + 10.0 * np.log10(gated.mean()))
        return value if math.isfinite(value) else None

    def gain_to(self, target: float) -> float:
        """The gain that brings what was measured to `target` LUFS (1 when it cannot be measured)."""
        measured = self.integrated()
        return 1.0 if measured is None else 10.0 ** ((target - measured) / 20.0)


def master_blocks(read: Callable[[int, int], np.ndarray], total: int, *, gain: float, peak_db: float,
                  sample_rate: int = SAMPLE_RATE, block: int = 1 << 18) -> Iterator[np.ndarray]:
    """The mastered track in blocks: samples [0, total) from `read(lo, hi)`, times `gain`, limited.

    Each block is limited with enough of its neighbours around it that the
    result equals limiting the whole track at once.
    """
    ceiling = 10.0 ** (peak_db / 20.0)
    margin = 2 * max(1, round(_LIMITER_RADIUS_S * sample_rate))  # the limiter looks this far either side
    for start in range(0, total, block):
        stop = min(total, start + block)
        lo, hi = max(0, start - margin), min(total, stop + margin)
        x = np.asarray(read(lo, hi), dtype=np.float64) * gain
        yield _limit(x, ceiling, sample_rate)[start - lo:stop - lo]


def _limit(x: np.ndarray, ceiling: float, sample_rate: int) -> np.ndarray:
    """Smooth gain reduction that provably keeps |x| <= ceiling.

    The needed gain is min-filtered over +-r samples and then averaged over
    +-r: every value in the average is at most the needed gain at the centre
    sample, so the average is too. A final clip catches rounding.
    """
    ceiling32 = np.float32(ceiling)
    if float(ceiling32) > ceiling:  # numpy would compare in float32
        ceiling32 = np.nextafter(ceiling32, np.float32(0))
    magnitude = np.abs(x)
    if magnitude.max() > ceiling:
        from scipy.ndimage import minimum_filter1d, uniform_filter1d

        size = 2 * max(1, round(_LIMITER_RADIUS_S * sample_rate)) + 1
        needed = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
        gain = uniform_filter1d(minimum_filter1d(needed, size, mode="nearest"), size, mode="nearest")
        x = x * gain
    return np.clip(x.astype(np.float32), -ceiling32, ceiling32)


def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {x.shape}")
    return x
