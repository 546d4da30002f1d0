"""Removing DC and sub-audio rumble from a clip before it is mixed, measured or written.

Speech models now and then emit a DC offset (the random checkpoint's every
line sits at -9.4 dBFS of it) and rumble under the voice. Left in, DC is
counted as RMS and as the noise floor, eats the limiter's headroom and pushes
the waveform off its centre. Every clip therefore goes through:

- a **DC blocker**: its mean removed, then a high-pass at DC_BLOCK_HZ (20 Hz,
  the bottom of the audible band), so that a drifting offset goes too. It
  leaves music and hummed notes alone (under 0.1 dB from 40 Hz up); stems get
  this and nothing else;
- a **high-pass** at the project's `output.highpass` (default
  DEFAULT_HIGHPASS_HZ, 70 Hz, as speech mastering chains do), for the master.

Both are Butterworth filters in second-order sections (scipy.signal), run
forward and backward (`sosfiltfilt`): zero-phase, so a clip's waveform and its
peaks stay where they were (a one-way high-pass shifts the low harmonics of a
voice against the others, which changes the peaks the limiter must take, and
delays the low end), and each clip is whole in memory, so running backwards
costs nothing. Run twice, a second-order design becomes fourth-order
(24 dB/octave); it is designed so that the whole response is 3 dB down at the
corner asked.
"""

from __future__ import annotations

import functools

import numpy as np

from higgs_cli.engine.request import SAMPLE_RATE

DC_BLOCK_HZ = 20.0
DEFAULT_HIGHPASS_HZ = 70.0
_ORDER = 2  # per pass; forward and backward make 4
# sosfiltfilt squares the magnitude: |H|^2 of one pass is 1 / (1 + (fd / f)^(2N)); both passes are 3 dB down
# where (1 + (fd / f)^(2N))^2 = 2, i.e. the design corner fd is the corner asked times (sqrt 2 - 1)^(1 / 2N).
_DESIGN_SCALE = (2.0 ** 0.5 - 1.0) ** (1.0 / (2 * _ORDER))


@functools.cache
def _sos(corner_hz: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import butter

    return butter(_ORDER, corner_hz * _DESIGN_SCALE, btype="highpass", fs=sample_rate, output="sos")


def highpass(audio: np.ndarray, corner_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`audio` (mono) with its mean removed and what lies under `corner_hz` filtered out (zero-phase,
    3 dB down at the corner, 24 dB/octave below). A corner of 0 only removes the mean."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {x.shape}")
    if x.size == 0:
        return x.astype(np.float32)
    x = x - x.mean()
    if corner_hz > 0:
        from scipy.signal import sosfiltfilt

        sos = _sos(float(corner_hz), int(sample_rate))
        # sosfiltfilt pads by reflection; a clip shorter than its padding is left with the mean removed
        if x.size > 3 * (2 * len(sos) + 1):
            x = sosfiltfilt(sos, x)
    return x.astype(np.float32)


def remove_dc(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The DC blocker: the mean removed and a high-pass at DC_BLOCK_HZ (what stems get)."""
    return highpass(audio, DC_BLOCK_HZ, sample_rate)


def clean(audio: np.ndarray, highpass_hz: float | None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """What a clip gets before the mix: the DC blocker, and the high-pass at `highpass_hz` when it is set
    above the DC blocker's corner (None or 0: the DC blocker only)."""
    return highpass(audio, max(DC_BLOCK_HZ, float(highpass_hz or 0.0)), sample_rate)


def dc_offset(audio: np.ndarray) -> float:
    """The mean of `audio` (its DC offset, linear)."""
    x = np.asarray(audio, dtype=np.float64)
    return float(x.mean()) if x.size else 0.0
