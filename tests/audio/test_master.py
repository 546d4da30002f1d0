"""Trimming, joining with exact timings, loudness and the peak ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_cli.audio.io import SAMPLE_RATE, peak_db
from higgs_cli.audio.master import assemble, master, measure_loudness, trim_silence
from higgs_cli.errors import AudioError

SR = SAMPLE_RATE


def tone(seconds: float, amp: float = 0.5, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, amp: float, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(round(seconds * SR))).astype(np.float32)


# trim_silence

def test_trim_cuts_edges_only():
    speech = np.concatenate([tone(0.3), np.zeros(SR // 2, np.float32), tone(0.3)])
    padded = np.concatenate([np.zeros(SR, np.float32), speech, np.zeros(2 * SR, np.float32)])
    trimmed = trim_silence(padded)
    # within a frame of the true edges, and the inner pause is kept
    assert speech.size <= trimmed.size <= speech.size + 2048
    assert np.count_nonzero(np.abs(trimmed) < 1e-6) >= SR // 2


def test_trim_keeps_quiet_noise_above_threshold_and_drops_below():
    x = np.concatenate([noise(0.5, 1e-4), tone(1.0), noise(0.5, 1e-4, seed=1)])
    assert trim_silence(x, top_db=40).size < 1.1 * SR
    assert trim_silence(x, top_db=100).size == x.size


@pytest.mark.parametrize("x", [np.zeros(SR, np.float32), np.zeros(0, np.float32), np.zeros(5, np.float32)])
def test_trim_silence_of_silence_is_empty(x):
    assert trim_silence(x).size == 0


def test_trim_very_short_clip():
    x = tone(0.01)
    assert 0 < trim_silence(x).size <= x.size


# assemble

def test_assemble_exact_spans_with_pauses():
    a, b, c = tone(1.0), tone(0.5), tone(0.25)
    track, spans = assemble([a, b, c], [0.5, 0.25], crossfade_ms=10)
    assert spans == [(0.0, 1.0), (1.5, 2.0), (2.25, 2.5)]
    assert track.size == round(2.5 * SR)
    assert track.dtype == np.float32
    # silence exactly where the pauses are
    assert not track[SR:round(1.5 * SR)].any()
    assert not track[2 * SR:round(2.25 * SR)].any()
    # the middle of each clip is untouched
    assert np.array_equal(track[round(1.5 * SR) + 1000:round(1.5 * SR) + 2000], b[1000:2000])


def test_assemble_fades_every_edge():
    track, _ = assemble([np.ones(SR, np.float32)], [], crossfade_ms=10)
    n = SR // 100
    assert track[0] < 0.01 and track[-1] < 0.01
    assert np.all(np.diff(track[:n]) > 0) and np.all(np.diff(track[-n:]) < 0)
    assert np.all(track[n:-n] == 1.0)


def test_assemble_zero_pause_crossfades():
    a, b = np.ones(SR, np.float32), np.ones(SR, np.float32)
    track, spans = assemble([a, b], [0.0], crossfade_ms=10)
    n = SR // 100
    assert spans == [(0.0, 1.0), ((SR - n) / SR, (2 * SR - n) / SR)]
    assert track.size == 2 * SR - n
    # linear fades of two equal clips sum to a flat line through the join
    assert np.allclose(track[n:-n], 1.0, atol=1e-6)


def test_assemble_negative_pause_overlaps_by_that_much():
    track, spans = assemble([tone(1.0), tone(1.0)], [-0.25], crossfade_ms=10)
    assert spans[1] == (0.75, 1.75)
    assert track.size == round(1.75 * SR)


def test_assemble_trailing_pause_and_no_crossfade():
    a = np.ones(100, np.float32)
    track, spans = assemble([a, a], [0.001, 0.002], crossfade_ms=0)
    assert spans == [(0.0, 100 / SR), (124 / SR, 224 / SR)]
    assert track.size == 224 + 48
    assert track[:100].tolist() == [1.0] * 100


def test_assemble_edge_cases():
    assert assemble([], [])[0].size == 0
    with pytest.raises(ValueError, match="pauses"):
        assemble([tone(0.1)] * 3, [0.1])
    # an overlap longer than the clip cannot start the next one before this one
    _, spans = assemble([tone(0.1), tone(1.0)], [-5.0])
    assert spans[1][0] == 0.0


# loudness and the limiter

@pytest.mark.parametrize(("signal", "target"), [
    (tone(4.0, amp=0.05), -16.0),
    (noise(3.0, 0.01), -20.0),
    (tone(3.0, amp=0.9) + noise(3.0, 0.05), -23.0),
])
def test_master_hits_loudness_target(signal, target):
    out = master(signal, loudness=target, peak_db=-1.0)
    assert out.dtype == np.float32 and out.size == signal.size
    assert measure_loudness(out) == pytest.approx(target, abs=0.5)
    assert peak_db(out) <= -1.0


@pytest.mark.parametrize("ceiling", [-1.0, -3.0, -0.1])
def test_limiter_guarantees_ceiling(ceiling):
    spiky = noise(2.0, 0.05)
    spiky[::4801] = 0.99  # isolated peaks far above the rest
    out = master(spiky, loudness=-10.0, peak_db=ceiling)
    assert peak_db(out) <= ceiling
    assert float(np.max(np.abs(out))) <= np.float64(10 ** (ceiling / 20))


def test_limiter_leaves_quiet_audio_alone():
    x = tone(0.2, amp=0.3)  # too short to measure: only limited, and no limiting needed
    assert measure_loudness(x) is None
    assert np.array_equal(master(x, highpass_hz=None), x)


def test_master_short_loud_clip_is_limited_not_normalized():
    x = tone(0.1, amp=1.0)
    out = master(x, peak_db=-6.0)
    assert peak_db(out) <= -6.0
    assert peak_db(out) > -7.0


def test_master_silence_and_empty():
    assert not master(np.zeros(3 * SR, np.float32)).any()
    assert measure_loudness(np.zeros(3 * SR, np.float32)) is None
    assert master(np.zeros(0, np.float32)).size == 0


def test_master_refuses_nan():
    x = tone(1.0)
    x[3] = np.nan
    with pytest.raises(AudioError):
        master(x)
