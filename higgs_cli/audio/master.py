"""Turn generated clips into one finished track: trim, join with pauses, master.

Every function takes and returns float32 mono at SAMPLE_RATE unless told
otherwise. Timings are counted in samples, so subtitles made from
`assemble`'s spans line up with the audio exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from higgs_cli.audio.cleanup import DEFAULT_HIGHPASS_HZ, clean
from higgs_cli.audio.loudness import (
    TP_REACH,
    LoudnessMeter,
    Measurement,
    TrackMeter,
    measure,
    measure_loudness,
    true_peak_envelope,
)
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import AudioError
from higgs_cli.threads import ordered_map

__all__ = ["LoudnessMeter", "MasterReport", "MasteredStream", "assemble", "assemble_stream", "master",
           "master_blocks", "master_report", "master_track", "measure_loudness", "trim_silence"]

_TRIM_FRAME = 1024
_TRIM_HOP = 256
_LIMITER_RADIUS_S = 0.005  # the gain moves over 2 x 5 ms: quick enough for peaks, slow enough not to buzz
_LIMITER_PASSES = 3  # a pass leaves at most a sliver over the ceiling between samples; the next removes it
LOUDNESS_TOLERANCE_LU = 1.0  # a target counts as reached within this (podcast specs allow +-1 LU)


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


def master(audio: np.ndarray, *, loudness: float = -16.0, peak_db: float = -1.0,
           highpass_hz: float | None = DEFAULT_HIGHPASS_HZ, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Remove DC and rumble under `highpass_hz` (cleanup.py: 0 removes only the DC; None takes the
    audio as it is, cleaned already), normalize to `loudness` LUFS, then limit so that no true
    peak exceeds `peak_db` dBTP.

    Audio too short or too quiet to measure keeps its level and is only limited.
    `master_track` also says what came out.
    """
    return master_track(audio, loudness=loudness, peak_db=peak_db, highpass_hz=highpass_hz,
                        sample_rate=sample_rate)[0]


def master_track(audio: np.ndarray, *, loudness: float = -16.0, peak_db: float = -1.0,
                 highpass_hz: float | None = DEFAULT_HIGHPASS_HZ,
                 sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, MasterReport]:
    """`master`, with the measured loudness, true peak and loudness range of the result."""
    x = _mono(audio)
    if not np.isfinite(x).all():
        raise AudioError("cannot master audio that contains NaN or infinite samples")
    if x.size == 0:
        return x.astype(np.float32), master_report(measure(x, sample_rate), loudness, peak_db)
    if highpass_hz is not None:  # DC and rumble out before loudness is measured
        x = clean(x, highpass_hz, sample_rate)
    meter = LoudnessMeter(sample_rate)
    meter.add(x)
    stream = MasteredStream(lambda lo, hi: x[lo:hi], x.size, gain=meter.gain_to(loudness), loudness=loudness,
                            peak_db=peak_db, sample_rate=sample_rate)
    out = np.concatenate(list(stream))
    return out, stream.report()


@dataclass(frozen=True)
class MasterReport:
    """What mastering gave: the measured figures of the result beside the targets it aimed at.

    `reached` is False, and `note` says why with the figures, when the
    loudness is more than LOUDNESS_TOLERANCE_LU from the target or the true
    peak is over the ceiling. None figures could not be measured (too short, silent).
    """

    loudness_lufs: float | None
    true_peak_dbtp: float | None
    loudness_range_lu: float | None
    target_lufs: float
    ceiling_dbtp: float
    reached: bool
    note: str | None = None

    def to_dict(self, digits: int = 2) -> dict:
        """JSON-ready, figures rounded to `digits` decimals."""
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()}


def master_report(measured: Measurement, target_lufs: float, ceiling_dbtp: float, *,
                  encoded: str | None = None) -> MasterReport:
    """Judge `measured` against the targets. `encoded` names a lossy format the figures were read
    back from, so that a peak over the ceiling is blamed on the encoder, not the limiter."""
    lufs, peak = measured.loudness_lufs, measured.true_peak_dbtp
    notes = []
    if lufs is None:
        notes.append(f"the loudness could not be measured (shorter than 0.4 s or silent), so the "
                     f"{target_lufs:g} LUFS target was not applied")
    elif lufs < target_lufs - LOUDNESS_TOLERANCE_LU:
        ratio = "" if peak is None else f" (its true peak is {peak - lufs:.1f} dB above its loudness)"
        notes.append(f"the master is {lufs:.1f} LUFS, {target_lufs - lufs:.1f} LU under the {target_lufs:g} LUFS "
                     f"target: the track is too peaky to get louder under the {ceiling_dbtp:g} dBTP ceiling"
                     f"{ratio}; lower the loudness target or raise the peak ceiling")
    elif lufs > target_lufs + LOUDNESS_TOLERANCE_LU:
        notes.append(f"the master is {lufs:.1f} LUFS, {lufs - target_lufs:.1f} LU over the {target_lufs:g} LUFS target")
    if peak is not None and peak > ceiling_dbtp + 0.1:
        why = (f"{encoded} encoding raised it; lower the peak ceiling by {peak - ceiling_dbtp + 0.5:.1f} dB "
               f"for {encoded}" if encoded else "the limiter could not hold it")
        notes.append(f"the true peak is {peak:.1f} dBTP, over the {ceiling_dbtp:g} dBTP ceiling: {why}")
    return MasterReport(lufs, peak, measured.loudness_range_lu, target_lufs, ceiling_dbtp, reached=not notes,
                        note="; ".join(notes) or None)


class MasteredStream:
    """The mastered track in blocks, measured on the way: iterate it once (e.g. into
    `write_audio_blocks`), then `report()` says what came out.

    `read(lo, hi)` gives the mixed track's samples [lo, hi) of `total`; `gain`
    is what brings it to `loudness` (`LoudnessMeter.gain_to`).
    """

    def __init__(self, read: Callable[[int, int], np.ndarray], total: int, *, gain: float, loudness: float,
                 peak_db: float, sample_rate: int = SAMPLE_RATE, block: int = 1 << 18) -> None:
        self._blocks = master_blocks(read, total, gain=gain, peak_db=peak_db, sample_rate=sample_rate, block=block)
        self._meter = TrackMeter(sample_rate)
        self.target, self.ceiling = loudness, peak_db
        self._done = False

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._done:
            raise RuntimeError("a MasteredStream can be iterated once")
        yield from self._meter.watch(self._blocks)
        self._done = True

    def report(self) -> MasterReport:
        if not self._done:
            raise RuntimeError("report() needs the whole stream to have been read")
        return master_report(self._meter.result(), self.target, self.ceiling)


def master_blocks(read: Callable[[int, int], np.ndarray], total: int, *, gain: float, peak_db: float,
                  sample_rate: int = SAMPLE_RATE, block: int = 1 << 18) -> Iterator[np.ndarray]:
    """The mastered track in blocks: samples [0, total) from `read(lo, hi)`, times `gain`, limited.

    Each block is limited with enough of its neighbours around it that the
    result equals limiting the whole track at once, so blocks are limited a
    few at a time on worker threads (threads.py; `read` must be safe to call
    from several threads) and yielded in order.
    """
    ceiling = 10.0 ** (peak_db / 20.0)
    margin = _LIMITER_PASSES * _pass_reach(sample_rate) + TP_REACH  # what one sample's result depends on

    def limited(start: int) -> np.ndarray:
        stop = min(total, start + block)
        lo, hi = max(0, start - margin), min(total, stop + margin)
        x = np.asarray(read(lo, hi), dtype=np.float64) * gain
        return _limit(x, ceiling, sample_rate)[start - lo:stop - lo]

    yield from ordered_map(limited, range(0, total, block))


def _radius(sample_rate: int) -> int:
    return max(1, round(_LIMITER_RADIUS_S * sample_rate))


def _pass_reach(sample_rate: int) -> int:
    """How far one limiter pass looks either side: the envelope, the min filter, the average."""
    return TP_REACH + (_radius(sample_rate) + TP_REACH) + _radius(sample_rate)


def _limit(x: np.ndarray, ceiling: float, sample_rate: int) -> np.ndarray:
    """Smooth gain reduction that keeps the true peak (between samples too) <= ceiling.

    The gain each sample needs (ceiling over the oversampled envelope) is
    min-filtered over +-(r + TP_REACH) samples and then averaged over +-r:
    every value in the average is at most the needed gain anywhere within
    TP_REACH of the centre, so the samples an intersample peak is made of are
    all turned down at least as much as the peak needs. Because the gain still
    varies a little across them, a peak can stay a sliver over; the next pass
    takes it down (only the changed stretches are measured again). A final
    clip holds the sample peak exactly.
    """
    ceiling32 = np.float32(ceiling)
    if float(ceiling32) > ceiling:  # numpy would compare in float32
        ceiling32 = np.nextafter(ceiling32, np.float32(0))
    x = np.asarray(x, dtype=np.float64)
    # the oversampling filter sums to under 2.4 in magnitude: audio under a quarter of the ceiling cannot reach it
    if x.size and np.abs(x).max() * 4.0 > ceiling:
        from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

        r = _radius(sample_rate)
        envelope = true_peak_envelope(x, sample_rate, above=ceiling)
        for _ in range(_LIMITER_PASSES):
            if envelope.max() <= ceiling:
                break
            needed = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))
            gain = uniform_filter1d(minimum_filter1d(needed, 2 * (r + TP_REACH) + 1, mode="nearest"), 2 * r + 1,
                                    mode="nearest")
            x = x * gain
            changed = maximum_filter1d((gain < 1.0).astype(np.uint8), 2 * TP_REACH + 1, mode="constant") > 0
            _remeasure(envelope, x, changed, ceiling, sample_rate)
    return np.clip(x.astype(np.float32), -ceiling32, ceiling32)


def _remeasure(envelope: np.ndarray, x: np.ndarray, where: np.ndarray, ceiling: float, sample_rate: int) -> None:
    """Recompute `envelope` in place on the runs of `where`, each with TP_REACH samples of context
    (only where it may exceed `ceiling`: the gain needs no more)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], where.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        lo, hi = max(0, a - TP_REACH), min(x.size, b + TP_REACH)
        envelope[a:b] = true_peak_envelope(x[lo:hi], sample_rate, above=ceiling)[a - lo:b - lo]


def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {x.shape}")
    return x
