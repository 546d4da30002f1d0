"""Turn generated clips into one finished track: trim, join with pauses, master.

Every function takes and returns float32 mono at SAMPLE_RATE unless told
otherwise. Timings are counted in samples, so subtitles made from
`assemble`'s spans line up with the audio exactly.
"""

from __future__ import annotations

import math
import warnings

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
    if len(pauses) not in (len(clips) - 1, len(clips)) and clips:
        raise ValueError(f"{len(clips)} clips need {len(clips) - 1} or {len(clips)} pauses, got {len(pauses)}")
    fade = max(0, round(crossfade_ms * sample_rate / 1000.0))
    clips = [_faded(_mono(clip), fade) for clip in clips]

    starts, cursor = [], 0
    for i, clip in enumerate(clips):
        starts.append(cursor)
        end = cursor + clip.size
        pause = pauses[i] if i < len(pauses) else 0.0
        if not math.isfinite(pause):
            raise ValueError(f"pause {i} is not a number: {pause}")
        if pause > 0:
            cursor = end + round(pause * sample_rate)
        elif i < len(clips) - 1:
            overlap = max(fade, round(-pause * sample_rate))
            cursor = end - min(overlap, clip.size)
        else:
            cursor = end
    total = max([cursor] + [s + c.size for s, c in zip(starts, clips, strict=True)]) if clips else 0

    track = np.zeros(total, dtype=np.float32)
    spans = []
    for start, clip in zip(starts, clips, strict=True):
        track[start:start + clip.size] += clip
        spans.append((start / sample_rate, (start + clip.size) / sample_rate))
    return track, spans


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
    x = _mono(audio).astype(np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    if not np.isfinite(x).all():
        raise AudioError("cannot master audio that contains NaN or infinite samples")
    measured = measure_loudness(x, sample_rate)
    if measured is not None:
        x *= 10.0 ** ((loudness - measured) / 20.0)
    return _limit(x, 10.0 ** (peak_db / 20.0), sample_rate)


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
