"""Measuring a track as delivery specs do: integrated loudness, loudness range, true peak.

Integrated loudness follows ITU-R BS.1770-4 (K-weighting, 400 ms blocks,
absolute and relative gates), loudness range EBU Tech 3342 (3 s short-term
loudness, -70 LUFS and -20 LU gates, 10th to 95th percentile) and true peak
BS.1770 Annex 2 (the signal oversampled to at least 192 kHz, as ffmpeg's
`ebur128` does, so that peaks between samples count). Every meter takes audio
in pieces of any size and keeps little state, so a track of hours costs a few
hundred kilobytes. Only numpy and scipy: no private API of any library.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from higgs_cli.engine.request import SAMPLE_RATE

# BS.1770's two K-weighting biquads as analog prototypes (the 48 kHz filters of
# the standard, re-derived for any sample rate by the bilinear transform).
_SHELF_HZ, _SHELF_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_HIGHPASS_HZ, _HIGHPASS_Q = 38.13547087602444, 0.5003270373238773
_TP_RATE = 192_000  # true peak is measured at this rate or above (4x at 48 kHz, 8x at 24 kHz)
# The interpolator: a Kaiser-windowed sinc (beta 9) reaching 16 samples either side, which is what
# ffmpeg's resampler uses for `ebur128=peak=true`; scipy's shorter default reads up to 1 dB lower on
# audio with much energy near Nyquist (random-weight "speech" is such audio).
_TP_HALF, _TP_BETA = 16, 9.0
TP_REACH = _TP_HALF + 1  # samples either side that one oversampled value depends on


def k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (b, a) coefficients of BS.1770's high shelf and high pass at `sample_rate`."""
    k = math.tan(math.pi * _SHELF_HZ / sample_rate)
    vh = 10.0 ** (_SHELF_DB / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = (np.array([vh + vb * k / _SHELF_Q + k * k, 2.0 * (k * k - vh), vh - vb * k / _SHELF_Q + k * k]) / a0,
             np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _SHELF_Q + k * k) / a0]))
    k = math.tan(math.pi * _HIGHPASS_HZ / sample_rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]),
                np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]))
    return [shelf, highpass]


def _lufs(energy: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(energy)


def _gated_mean(z: np.ndarray, relative_lu: float) -> float | None:
    """Mean energy of the blocks above -70 LUFS and above `relative_lu` under their own mean."""
    loud = z[_lufs(z) > -70.0]
    if loud.size == 0:
        return None
    kept = loud[_lufs(loud) > _lufs(loud.mean()) + relative_lu]
    return float(kept.mean()) if kept.size else None


class LoudnessMeter:
    """Integrated loudness and loudness range of audio fed in pieces of any size.

    The K-weighting filters keep their state from piece to piece, and only the
    filtered energy of each 100 ms step is kept.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        from scipy.signal import lfilter

        self._lfilter = lfilter
        self.sample_rate = sample_rate
        self._stages = [[b, a, np.zeros(2)] for b, a in k_weighting(sample_rate)]
        self._step = round(0.1 * sample_rate)  # gating blocks are 4 steps long and 1 step apart
        self._steps: list[np.ndarray] = []
        self._rest = np.zeros(0)
        self.samples = 0

    def add(self, audio: np.ndarray) -> None:
        x = np.asarray(audio, dtype=np.float64)
        self.samples += x.size
        for stage in self._stages:
            x, stage[2] = self._lfilter(stage[0], stage[1], x, zi=stage[2])
        energy = np.concatenate([self._rest, x * x])
        whole = energy.size // self._step * self._step
        if whole:
            self._steps.append(energy[:whole].reshape(-1, self._step).sum(axis=1))
        self._rest = energy[whole:]

    def _windows(self, steps_per_window: int, count: int) -> np.ndarray:
        """Mean energy of `count` windows of `steps_per_window` steps, one step apart."""
        steps = np.concatenate([*self._steps, [self._rest.sum()] if self._rest.size else []])
        sums = np.concatenate([[0.0], np.cumsum(steps)])
        first = np.arange(count)
        return (sums[np.minimum(first + steps_per_window, steps.size)] - sums[first]) / (
            steps_per_window * self._step)

    def integrated(self) -> float | None:
        """LUFS of everything added; None when shorter than 400 ms or silent."""
        if self.samples < round(0.4 * self.sample_rate):
            return None
        blocks = int(np.round((self.samples / self.sample_rate - 0.4) / 0.1)) + 1
        mean = _gated_mean(self._windows(4, blocks), -10.0)
        value = None if mean is None else float(_lufs(mean))
        return value if value is not None and math.isfinite(value) else None

    def loudness_range(self) -> float | None:
        """LRA in LU (EBU Tech 3342); None when shorter than one 3 s window or silent."""
        count = self.samples // self._step - 30 + 1
        if count < 1:
            return None
        z = self._windows(30, count)
        loud = z[_lufs(z) > -70.0]
        if loud.size == 0:
            return None
        kept = _lufs(loud[_lufs(loud) > _lufs(loud.mean()) - 20.0])
        low, high = np.percentile(kept, [10.0, 95.0])
        return float(high - low)

    def gain_to(self, target: float) -> float:
        """The gain that brings what was measured to `target` LUFS (1 when it cannot be measured)."""
        measured = self.integrated()
        return 1.0 if measured is None else 10.0 ** ((target - measured) / 20.0)


def _oversampling(sample_rate: int) -> int:
    return max(4, math.ceil(_TP_RATE / sample_rate))


@functools.cache
def _interpolator(up: int) -> np.ndarray:
    from scipy.signal import firwin

    return firwin(2 * _TP_HALF * up + 1, 1.0 / up, window=("kaiser", _TP_BETA))


def true_peak_envelope(x: np.ndarray, sample_rate: int = SAMPLE_RATE, *, above: float | None = None) -> np.ndarray:
    """For each sample, the largest magnitude of the band-limited signal from it to the next sample.

    The signal is oversampled (at least 192 kHz); the envelope is never below
    the sample's own magnitude. Values within TP_REACH samples of either end
    assume silence beyond the ends.

    With `above`, only the values that may exceed it are computed (the rest hold the sample's
    own magnitude, which is then under `above`): what a limiter or a peak meter needs, for a
    fraction of the work. A value is skipped when a bound on it (the samples it reads, weighted by
    the interpolator's largest taps) cannot reach `above`; the values computed are the same, bit for bit.
    """
    x = np.asarray(x, dtype=np.float64)
    if above is None or x.size == 0:
        return _envelope(x, sample_rate)
    magnitude = np.abs(x)
    # each oversampled value is a weighted sum of the 2 * _TP_HALF + 1 samples around it: weighting their
    # magnitudes by each tap's largest weight over the phases bounds it (an eighth of the work at 24 kHz)
    full = np.convolve(magnitude, _tap_bound(_oversampling(sample_rate))[::-1])
    reach = full[_TP_HALF:_TP_HALF + x.size] * (1.0 + 1e-9)
    out = magnitude
    runs = _runs((reach > above) | (magnitude > above))
    if runs:
        # the runs, each with its context, measured in one call: a value reads only its own context
        spans = [(max(0, a - TP_REACH), min(x.size, b + TP_REACH)) for a, b in runs]
        envelope = _envelope(np.concatenate([x[lo:hi] for lo, hi in spans]), sample_rate)
        at = 0
        for (a, b), (lo, hi) in zip(runs, spans, strict=True):
            out[a:b] = envelope[at + a - lo:at + b - lo]
            at += hi - lo
    return out


def _envelope(x: np.ndarray, sample_rate: int) -> np.ndarray:
    from scipy.signal import resample_poly

    if x.size == 0:
        return x
    up = _oversampling(sample_rate)
    fine = np.abs(resample_poly(x, up, 1, window=_interpolator(up)))[: x.size * up].reshape(x.size, up)
    return np.maximum(fine.max(axis=1), np.abs(x))


@functools.cache
def _tap_bound(up: int) -> np.ndarray:
    """For each of the 2 * _TP_HALF + 1 samples an oversampled value reads (earliest first), the largest
    magnitude its weight takes over the `up` phases."""
    taps = _interpolator(up) * up
    span = 2 * _TP_HALF
    return np.array([max((abs(taps[p + up * (span - i)]) for p in range(up) if p + up * (span - i) < taps.size),
                         default=0.0) for i in range(span + 1)])


_RUN_GAP = 4 * TP_REACH  # runs closer than this are measured as one (less context measured twice)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) runs of True in `mask`, runs less than _RUN_GAP apart joined."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.view(np.int8), [0]])))
    starts, ends = edges[::2], edges[1::2]
    if starts.size == 0:
        return []
    keep = np.concatenate([[True], starts[1:] - ends[:-1] >= _RUN_GAP])
    return list(zip(starts[keep].tolist(), np.concatenate([ends[:-1][keep[1:]], ends[-1:]]).tolist(), strict=True))


class TruePeakMeter:
    """The true peak of audio fed in pieces: each piece is oversampled with its neighbours around it
    (only where it may exceed the peak found so far)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._held = np.zeros(0)  # left context (already measured), then samples still waiting for theirs
        self._context = 0  # how many of the held samples are context
        self.peak = 0.0

    def add(self, audio: np.ndarray) -> None:
        x = np.concatenate([self._held, np.asarray(audio, dtype=np.float64)])
        end = max(self._context, x.size - TP_REACH)  # samples before `end` have their right-hand context
        if end > self._context:
            envelope = true_peak_envelope(x, self.sample_rate, above=self.peak)
            self.peak = max(self.peak, float(envelope[self._context:end].max()))
        start = max(0, end - TP_REACH)
        self._held, self._context = x[start:], end - start

    def finish(self) -> float:
        """The true peak as linear magnitude (0 for silence); call once, after the last piece."""
        if self._held.size > self._context:
            rest = true_peak_envelope(self._held, self.sample_rate, above=self.peak)[self._context:]
            self.peak = max(self.peak, float(rest.max()))
        self._held, self._context = np.zeros(0), 0
        return self.peak


def to_db(magnitude: float) -> float | None:
    """dB of a linear magnitude; None for silence (JSON has no -inf)."""
    return 20.0 * math.log10(magnitude) if magnitude > 0 else None


@dataclass(frozen=True)
class Measurement:
    """What a loudness meter shows for a track; None where it cannot be measured (too short, silent)."""

    loudness_lufs: float | None
    true_peak_dbtp: float | None
    loudness_range_lu: float | None


class TrackMeter:
    """Loudness, loudness range and true peak of one track fed in pieces (`watch` passes them on)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.loudness = LoudnessMeter(sample_rate)
        self.peak = TruePeakMeter(sample_rate)

    def add(self, audio: np.ndarray) -> None:
        self.loudness.add(audio)
        self.peak.add(audio)

    def watch(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Yield `blocks` unchanged, measuring each on the way."""
        for block in blocks:
            self.add(block)
            yield block

    def result(self) -> Measurement:
        return Measurement(self.loudness.integrated(), to_db(self.peak.finish()), self.loudness.loudness_range())


def measure(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Measurement:
    """Loudness, true peak and loudness range of a whole track in memory."""
    meter = TrackMeter(sample_rate)
    meter.add(np.asarray(audio, dtype=np.float64))
    return meter.result()


def measure_loudness(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float | None:
    """Integrated loudness in LUFS (ITU-R BS.1770); None when too short (< 400 ms) or silent."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {x.shape}")
    meter = LoudnessMeter(sample_rate)
    meter.add(x)
    return meter.integrated()
