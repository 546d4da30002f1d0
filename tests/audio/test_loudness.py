"""Loudness, loudness range and true peak of mastered audio, checked against ffmpeg's ebur128 and pyloudnorm."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from higgs_cli.audio.io import SAMPLE_RATE, write_audio
from higgs_cli.audio.loudness import (
    LoudnessMeter,
    TrackMeter,
    TruePeakMeter,
    measure,
    measure_loudness,
    true_peak_envelope,
)
from higgs_cli.audio.master import LOUDNESS_TOLERANCE_LU, MasteredStream, master, master_report, master_track

SR = SAMPLE_RATE
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.needs_ffmpeg  # ffmpeg's ebur128: the independent loudness meter we compare with


def speechy(seconds: float, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Broadband noise in syllable-like bursts of changing level, as random-weight 'speech' is."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    envelope = np.repeat(rng.uniform(0.02, 1.0, n // 2400 + 1), 2400)[:n]
    return (level * envelope * rng.standard_normal(n)).astype(np.float32)


def peaky(seconds: float) -> np.ndarray:
    """Quiet noise with loud clicks: its peaks hit any ceiling long before its loudness reaches a target."""
    rng = np.random.default_rng(3)
    x = 0.01 * rng.standard_normal(round(seconds * SR))
    x[500::4801], x[501::4801] = 0.99, -0.99
    return x.astype(np.float32)


def ebur128(path) -> dict[str, float]:
    """ffmpeg's summary: integrated loudness I (LUFS), loudness range LRA (LU), true peak (dBTP)."""
    run = subprocess.run([FFMPEG, "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
                          "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = run.stderr[run.stderr.rindex("Summary:"):]
    found = {key: float(re.search(rf"{key}:\s+(-?[\d.]+|-inf)", summary).group(1))
             for key in ("I", "LRA", "Peak")}
    return found


@needs_ffmpeg
@pytest.mark.parametrize(("signal", "target", "ceiling"), [
    (speechy(12.0), -16.0, -1.0),
    (speechy(12.0, seed=1, level=0.9), -10.0, -1.0),  # loud: much of it limited
    (speechy(8.0, seed=2), -23.0, -3.0),
])
def test_master_true_peak_and_figures_agree_with_ffmpeg(tmp_path, signal, target, ceiling):
    out, report = master_track(signal, loudness=target, peak_db=ceiling)
    path = write_audio(tmp_path / "m.wav", out)
    ffmpeg = ebur128(path)
    # the ceiling holds as a delivery check reads it: true peak, oversampled, in the written file
    assert ffmpeg["Peak"] <= ceiling + 0.1
    assert report.true_peak_dbtp <= ceiling + 1e-6
    assert report.loudness_lufs == pytest.approx(ffmpeg["I"], abs=0.5)
    assert report.true_peak_dbtp == pytest.approx(ffmpeg["Peak"], abs=0.5)
    assert report.loudness_range_lu == pytest.approx(ffmpeg["LRA"], abs=0.5)


@needs_ffmpeg
def test_loudness_range_of_two_levels_agrees_with_ffmpeg(tmp_path):
    quiet, loud = speechy(10.0, seed=4, level=0.03), speechy(10.0, seed=5, level=0.3)  # 20 dB apart
    x = np.concatenate([quiet, loud])
    sf.write(tmp_path / "two.wav", x, SR, subtype="FLOAT")
    figures = measure(x)
    assert figures.loudness_range_lu > 10.0
    assert figures.loudness_range_lu == pytest.approx(ebur128(tmp_path / "two.wav")["LRA"], abs=0.5)


def test_sample_peak_limiting_is_not_enough():
    # the old limiter held samples under the ceiling, and the band-limited signal went over between them
    x = speechy(6.0, seed=1, level=0.9) * 3.0
    plain = np.clip(x, -10 ** (-1 / 20), 10 ** (-1 / 20))
    assert 20 * np.log10(true_peak_envelope(plain).max()) > -0.9
    assert 20 * np.log10(true_peak_envelope(master(x, loudness=-10.0, peak_db=-1.0)).max()) <= -1.0 + 1e-6


def test_peaky_track_reports_the_miss_with_figures():
    out, report = master_track(peaky(10.0), loudness=-16.0, peak_db=-1.0)
    assert not report.reached
    assert report.loudness_lufs < -16.0 - LOUDNESS_TOLERANCE_LU
    assert report.true_peak_dbtp <= -1.0 + 1e-6
    assert f"{report.loudness_lufs:.1f} LUFS" in report.note and "-16 LUFS" in report.note
    assert "-1 dBTP" in report.note and "ceiling" in report.note
    assert report.to_dict()["loudness_lufs"] == round(report.loudness_lufs, 2)


def test_reached_target_has_no_note():
    _, report = master_track(speechy(6.0), loudness=-18.0, peak_db=-1.0)
    assert report.reached and report.note is None
    assert report.loudness_lufs == pytest.approx(-18.0, abs=LOUDNESS_TOLERANCE_LU)
    assert (report.target_lufs, report.ceiling_dbtp) == (-18.0, -1.0)


def test_report_of_silence_and_of_lossy_overshoot():
    _, report = master_track(np.zeros(2 * SR, np.float32))
    assert report.loudness_lufs is None and report.true_peak_dbtp is None and not report.reached
    assert "could not be measured" in report.note
    over = master_report(measure(speechy(3.0)), -30.0, -6.0, encoded="MP3")
    assert "MP3 encoding raised it" in over.note


def test_mastered_stream_equals_master_track_and_measures_what_it_yields():
    x = speechy(7.0, seed=6, level=0.8)
    whole, report = master_track(x, loudness=-12.0, peak_db=-1.5, highpass_hz=None)  # the stream takes x as it is
    meter = LoudnessMeter()
    meter.add(x)
    stream = MasteredStream(lambda lo, hi: x[lo:hi], x.size, gain=meter.gain_to(-12.0), loudness=-12.0,
                            peak_db=-1.5, block=10_000)
    with pytest.raises(RuntimeError):
        stream.report()
    blocks = np.concatenate(list(stream))
    assert np.allclose(blocks, whole, atol=1e-6)
    assert stream.report().loudness_lufs == pytest.approx(report.loudness_lufs, abs=1e-6)
    assert stream.report().true_peak_dbtp == pytest.approx(measure(blocks).true_peak_dbtp, abs=1e-6)


def test_true_peak_meter_in_pieces_equals_whole():
    x = speechy(3.0, seed=7)
    meter = TruePeakMeter()
    for a, b in zip([0, 1, 7, 30, 5000, 5001], [1, 7, 30, 5000, 5001, x.size]):
        meter.add(x[a:b])
    assert meter.finish() == pytest.approx(float(true_peak_envelope(x).max()), rel=1e-9)
    assert TruePeakMeter().finish() == 0.0


def test_true_peak_finds_peaks_between_samples():
    # a tone at a quarter of the rate, sampled 45 degrees off its crests: samples at 0.707, peaks at 1
    x = np.sin(np.pi / 2 * np.arange(4 * SR) + np.pi / 4).astype(np.float64)
    x *= np.minimum(1.0, np.arange(x.size) / 2400)[::-1] * np.minimum(1.0, np.arange(x.size) / 2400)  # no jumps
    assert np.abs(x).max() == pytest.approx(0.7071, abs=1e-3)
    assert measure(x).true_peak_dbtp == pytest.approx(0.0, abs=0.05)


def test_loudness_agrees_with_pyloudnorm_public_api():
    pyloudnorm = pytest.importorskip("pyloudnorm")
    for seed in range(3):
        x = speechy(5.0, seed=seed).astype(np.float64)
        assert measure_loudness(x) == pytest.approx(pyloudnorm.Meter(SR).integrated_loudness(x), abs=0.2)
    assert measure_loudness(np.zeros(SR // 10)) is None


def test_track_meter_watch_passes_blocks_through():
    meter = TrackMeter()
    blocks = [speechy(1.0, seed=s) for s in range(4)]
    assert all(a is b for a, b in zip(meter.watch(blocks), blocks, strict=True))
    assert meter.result().loudness_lufs == pytest.approx(measure_loudness(np.concatenate(blocks)), abs=1e-9)


@pytest.mark.parametrize("size", [5, 40, 24_000])
def test_true_peak_envelope_above_a_level_is_exact_where_it_matters(size):
    """`above` skips only values that cannot reach the level; the rest are the same bits."""
    x = speechy(1.0, seed=3)[:size] * 2.5
    whole = true_peak_envelope(x)
    for level in (0.05, 0.5, 1.0, float(whole.max())):
        part = true_peak_envelope(x, above=level)
        loud = whole > level
        assert np.array_equal(part[loud], whole[loud])
        assert (part[~loud] <= level).all()
