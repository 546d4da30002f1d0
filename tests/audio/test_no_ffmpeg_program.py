"""Nothing higgs does needs the ffmpeg program (issue 35 item 6): M4B/AAC are read and time is
stretched through PyAV's own FFmpeg libraries. Each test hides ffmpeg from PATH; the differential
test compares PyAV's atempo with the ffmpeg program's where that is installed."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from higgs_cli.audio.io import SAMPLE_RATE, load_audio, write_audio
from higgs_cli.errors import AudioError
from higgs_cli.server.audio import can_stretch, stretch

FFMPEG = shutil.which("ffmpeg")


@pytest.fixture
def no_ffmpeg(tmp_path, monkeypatch):
    """PATH without ffmpeg or ffprobe (an empty folder): what a fresh machine has."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("ffmpeg") is None and shutil.which("ffprobe") is None


def tone(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(7 * t))).astype(np.float32)


def test_an_m4b_is_read_back_without_the_ffmpeg_program(tmp_path, no_ffmpeg):
    path = write_audio(tmp_path / "book.m4b", tone(2.0))
    audio = load_audio(path)
    assert abs(audio.size - 2 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE  # AAC adds priming samples
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    assert np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(220, abs=2)


def test_an_m4b_longer_than_allowed_is_refused_from_its_header(tmp_path, no_ffmpeg):
    path = write_audio(tmp_path / "book.m4b", tone(3.0))
    with pytest.raises(AudioError, match=r"3\.\d s long; at most 1 s"):
        load_audio(path, max_seconds=1.0)


def test_what_pyav_cannot_read_either_is_a_clear_error(tmp_path, no_ffmpeg):
    path = tmp_path / "notes.m4a"
    path.write_bytes(b"not audio at all, " * 50)
    with pytest.raises(AudioError, match="not a readable audio file") as error:
        load_audio(path)
    assert "M4A/M4B" in error.value.hint


@pytest.mark.parametrize("speed", [0.25, 0.5, 1.5, 2.0, 4.0])
def test_time_stretching_needs_no_ffmpeg_program(no_ffmpeg, speed):
    assert can_stretch()
    audio = tone(3.0)
    stretched = stretch(audio, speed)
    assert stretched.dtype == np.float32
    assert stretched.size == pytest.approx(audio.size / speed, rel=0.02)


@pytest.mark.needs_ffmpeg  # the differential check against the ffmpeg program
@pytest.mark.parametrize("speed", [0.5, 2.0, 3.0])
def test_pyav_atempo_gives_what_the_ffmpeg_program_gives(speed):
    audio = tone(2.0)
    chain = "atempo=2.000000,atempo=1.500000" if speed == 3.0 else f"atempo={speed:.6f}"
    done = subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", str(SAMPLE_RATE),
                           "-ac", "1", "-i", "pipe:0", "-filter:a", chain, "-f", "f32le", "pipe:1"],
                          input=audio.tobytes(), capture_output=True, check=True)
    expected = np.frombuffer(done.stdout, dtype="<f4")
    got = stretch(audio, speed)
    assert got.size == pytest.approx(expected.size, abs=64)  # the program and PyAV may link other FFmpeg versions
    n = min(got.size, expected.size)
    assert np.sqrt(np.mean((got[:n] - expected[:n]) ** 2)) < 1e-3
