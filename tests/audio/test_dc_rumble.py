"""Mastering removes DC and sub-audio rumble before loudness (issue 35 item 1), checked with ffmpeg's
`astats` (DC offset, RMS) and `ebur128` (loudness, true peak) as independent meters."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from higgs_cli.audio.cleanup import DC_BLOCK_HZ, DEFAULT_HIGHPASS_HZ, clean, dc_offset, highpass, remove_dc
from higgs_cli.audio.io import SAMPLE_RATE, write_audio
from higgs_cli.audio.master import master_track

SR = SAMPLE_RATE
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.needs_ffmpeg  # its astats and ebur128 filters are the independent meters here
DC = 0.25  # -12 dBFS of offset
RUMBLE = ((12.0, 0.15), (25.0, 0.1))  # Hz, amplitude


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced syllables (a 120 Hz harmonic series) and noisy ones, at changing levels, with pauses."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    t = np.arange(n) / SR
    voiced = sum(np.sin(2 * np.pi * k * 120.0 * t + rng.uniform(0, 6.3)) / k for k in range(1, 25))
    noisy = rng.standard_normal(n)
    syllable = 4800  # 0.2 s
    kinds = rng.choice(3, n // syllable + 1, p=[0.6, 0.25, 0.15])  # voiced, noisy, pause
    levels = rng.uniform(0.3, 1.0, kinds.size)
    which, level = np.repeat(kinds, syllable)[:n], np.repeat(levels, syllable)[:n]
    x = np.where(which == 0, 0.08 * voiced, np.where(which == 1, 0.05 * noisy, 0.0)) * level
    return x.astype(np.float32)


def dirty(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    rumble = sum(a * np.sin(2 * np.pi * f * t) for f, a in RUMBLE)
    return (speech_like(seconds) + DC + rumble).astype(np.float32)


def astats(path, pre: str = "") -> dict[str, float]:
    """ffmpeg's astats over the whole file (after the filters in `pre`): DC offset (linear), RMS level (dB)."""
    chain = (pre + "," if pre else "") + "astats=metadata=0"
    run = subprocess.run([FFMPEG, "-hide_banner", "-nostats", "-i", str(path), "-af", chain, "-f", "null", "-"],
                         capture_output=True, text=True, check=True)
    overall = run.stderr[run.stderr.rindex("Overall"):]
    return {"dc": float(re.search(r"DC offset:\s+(-?[\d.e+-]+)", overall).group(1)),
            "rms_db": float(re.search(r"RMS level dB:\s+(-?[\d.]+|-inf)", overall).group(1))}


def ebur128(path) -> dict[str, float]:
    run = subprocess.run([FFMPEG, "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
                          "-f", "null", "-"], capture_output=True, text=True, check=True)
    summary = run.stderr[run.stderr.rindex("Summary:"):]
    return {key: float(re.search(rf"{key}:\s+(-?[\d.]+|-inf)", summary).group(1)) for key in ("I", "Peak")}


RUMBLE_BAND = "lowpass=f=30,lowpass=f=30,lowpass=f=30"  # what lies under 30 Hz, for astats


@needs_ffmpeg
@pytest.mark.parametrize(("target", "ceiling"), [(-16.0, -1.0), (-23.0, -2.0)])
def test_mastering_removes_dc_and_rumble_and_meets_its_targets(tmp_path, target, ceiling):
    source = write_audio(tmp_path / "dirty.wav", dirty(12.0))
    before = astats(source)
    assert 20 * np.log10(abs(before["dc"])) == pytest.approx(20 * np.log10(DC), abs=0.5)
    out, report = master_track(dirty(12.0), loudness=target, peak_db=ceiling)
    master = write_audio(tmp_path / "master.wav", out)
    after, loud = astats(master), ebur128(master)
    assert abs(after["dc"]) < 10 ** (-60 / 20)  # DC under -60 dBFS
    assert loud["I"] == pytest.approx(target, abs=0.5)
    assert loud["Peak"] <= ceiling + 0.1  # ffmpeg's true peak, with its own interpolator's tolerance
    assert report.reached and report.loudness_lufs == pytest.approx(loud["I"], abs=0.2)
    # the rumble: ffmpeg's RMS under 30 Hz against the file's, both without DC (ffmpeg's own 5 Hz high-pass)
    def rumble_db(path):
        return astats(path, f"highpass=f=5,{RUMBLE_BAND}")["rms_db"] - astats(path, "highpass=f=5")["rms_db"]

    assert rumble_db(source) > -3.0  # the rumble is louder than the speech
    assert rumble_db(master) < -25.0  # measured: -28.9 dB (the 25 Hz part is 28 dB down at a 70 Hz corner)


def test_the_high_pass_is_3_db_down_at_its_corner_and_leaves_speech_alone():
    t = np.arange(4 * SR) / SR
    for freq, expected_db, tolerance in [(DEFAULT_HIGHPASS_HZ, -3.0, 0.1), (1000.0, 0.0, 0.01), (200.0, 0.0, 0.1),
                                         (15.0, -45.9, 0.5)]:
        x = np.sin(2 * np.pi * freq * t).astype(np.float32)
        y = highpass(x, DEFAULT_HIGHPASS_HZ)[SR:-SR]  # away from the ends
        gain_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)) / np.sqrt(0.5))
        assert gain_db == pytest.approx(expected_db, abs=tolerance), freq


def test_the_dc_blocker_removes_an_offset_and_a_drift_but_keeps_music_bass():
    t = np.arange(3 * SR) / SR
    bass = 0.3 * np.sin(2 * np.pi * 41.2 * t)  # E1, the lowest note of a bass guitar
    drift = 0.2 + 0.1 * t / t[-1]  # an offset that creeps
    assert np.abs(remove_dc(drift.astype(np.float32))).max() < 1e-3  # offset and drift both gone
    y = remove_dc((bass + drift).astype(np.float32))[SR // 2:-SR // 2]
    assert abs(dc_offset(y) - dc_offset(bass[SR // 2:-SR // 2])) < 1e-4  # what mean is left is the bass's own
    kept = np.sqrt(np.mean(y.astype(np.float64) ** 2)) / (0.3 / np.sqrt(2))
    assert 20 * np.log10(kept) > -0.3  # the bass keeps its level (0.2 dB down at 41 Hz)
    assert DC_BLOCK_HZ < 41.2


def test_cleaning_keeps_the_length_and_handles_short_and_empty_clips():
    assert clean(np.zeros(0, np.float32), 70.0).size == 0
    short = np.full(5, 0.5, np.float32)
    assert np.allclose(clean(short, 70.0), 0.0)  # too short to filter: only the mean goes
    x = dirty(1.0)
    assert clean(x, None).shape == x.shape and clean(x, None).dtype == np.float32
    with pytest.raises(ValueError):
        clean(np.zeros((10, 2), np.float32), 70.0)
