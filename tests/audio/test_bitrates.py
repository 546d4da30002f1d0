"""Bitrates are honoured or refused (issue 35 item 2): every MP3 and M4B bitrate that bitrates.py
allows at a sample rate is what ffprobe reads back (within 5%), and every other is refused with
the allowed values. M4B frames are padded with AAC fill elements, which decoders skip."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from higgs_cli.audio import bitrates, mp4
from higgs_cli.audio.io import SAMPLE_RATE, load_audio, supported_output_formats, write_audio
from higgs_cli.errors import UsageError

FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.needs_ffmpeg  # ffprobe reads the bitrates back
RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def speech_with_pauses(seconds: float = 4.0) -> np.ndarray:
    """Voiced syllables (a 120 Hz harmonic series), a few noisy ones, and pauses: the pauses are
    what an AAC encoder spends the fewest bits on."""
    rng = np.random.default_rng(5)
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    voiced = sum(np.sin(2 * np.pi * k * 120.0 * t + rng.uniform(0, 6.3)) / k for k in range(1, 25))
    kinds = np.repeat(rng.choice(3, n // 4800 + 1, p=[0.5, 0.15, 0.35]), 4800)[:n]
    x = np.where(kinds == 0, 0.25 * voiced, np.where(kinds == 1, 0.15 * rng.standard_normal(n), 0.0))
    return x.astype(np.float32)


def noise_bursts(seconds: float = 4.0) -> np.ndarray:
    """Loud white noise half of the time, as the random-weight checkpoint "speaks"."""
    rng = np.random.default_rng(5)
    n = round(seconds * SAMPLE_RATE)
    gate = np.repeat(rng.random(n // 4800 + 1) < 0.5, 4800)[:n]
    return (0.2 * rng.standard_normal(n) * gate).astype(np.float32)


def stream_kbps(path) -> float:
    out = subprocess.run([FFPROBE, "-v", "error", "-show_entries", "stream=bit_rate,sample_rate", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    stream = json.loads(out)["streams"][0]
    return int(stream["bit_rate"]) / 1000


def cases():
    for ext in ("mp3", "m4b"):
        for rate in RATES:
            allowed = bitrates.allowed_kbps(ext, rate)
            for kbps in sorted({allowed[0], allowed[len(allowed) // 2], allowed[-1]}):
                yield ext, rate, kbps


@needs_ffprobe
@pytest.mark.parametrize(("ext", "rate", "kbps"), list(cases()))
def test_every_allowed_bitrate_is_what_ffprobe_reads(tmp_path, ext, rate, kbps):
    if ext not in supported_output_formats():
        pytest.skip(f"this installation cannot write {ext}")
    path = write_audio(tmp_path / f"a.{ext}", speech_with_pauses(), bitrate_kbps=kbps, rate=rate)
    assert stream_kbps(path) == pytest.approx(kbps, rel=0.05)


@pytest.mark.parametrize(("ext", "rate", "kbps", "allowed"), [
    ("mp3", 22050, 192, "8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160"),
    ("mp3", 8000, 128, "8, 16, 24, 32, 40, 48, 56, 64"),
    ("mp3", 44100, 144, "32, 40, 48"),
    ("m4b", 16000, 128, "48, 56, 64, 80, 96"),
    ("m4b", 44100, 320, "224, 256"),
    ("m4b", 44100, 32, "48, 56"),
])
def test_a_bitrate_the_format_cannot_carry_is_refused_with_the_allowed_ones(tmp_path, ext, rate, kbps, allowed):
    with pytest.raises(UsageError, match=f"{kbps} kbps is not a bitrate an {ext.upper()} at {rate} Hz") as caught:
        write_audio(tmp_path / f"a.{ext}", speech_with_pauses(0.5), bitrate_kbps=kbps, rate=rate)
    assert allowed in caught.value.hint
    assert list(tmp_path.iterdir()) == []


@needs_ffprobe
@pytest.mark.parametrize("kbps", [192, 256])
def test_an_m4b_of_noise_is_written_at_the_bitrate_asked(tmp_path, kbps):
    """The issue's case: the random checkpoint's noise-like output asked 192 and 256 kbps read 165 and 171.
    (Under 160 kbps at 44.1 kHz the encoder may spend more on such noise than asked: 138 for 128.)"""
    if "m4b" not in supported_output_formats():
        pytest.skip("this installation cannot write m4b")
    path = write_audio(tmp_path / "a.m4b", noise_bursts(), bitrate_kbps=kbps)
    assert stream_kbps(path) == pytest.approx(kbps, rel=0.05)


def test_the_default_bitrate_fits_the_rate(tmp_path):
    assert bitrates.default_kbps("mp3", 44100) == 192
    assert bitrates.default_kbps("mp3", 22050) == 160 and bitrates.default_kbps("mp3", 8000) == 64
    assert bitrates.default_kbps("m4b", 16000) == 96
    write_audio(tmp_path / "low.mp3", speech_with_pauses(0.5), rate=16000)  # not refused: 160 kbps


def test_aac_fill_elements_leave_the_decoded_audio_as_it_was(tmp_path, monkeypatch):
    audio = speech_with_pauses(3.0)
    padded = load_audio(write_audio(tmp_path / "padded.m4b", audio, bitrate_kbps=128))
    monkeypatch.setattr(mp4._ConstantRate, "__call__", lambda self, packet: packet)
    plain_path = write_audio(tmp_path / "plain.m4b", audio, bitrate_kbps=128)
    assert (tmp_path / "padded.m4b").stat().st_size > 1.3 * plain_path.stat().st_size
    assert np.array_equal(load_audio(plain_path), padded)


def test_a_fill_element_is_not_added_to_a_block_that_does_not_end_as_expected():
    assert mp4._fill(b"\x00\x00", 10) is None  # no ID_END
    assert mp4._fill(b"\xe0\x00", 10) is None  # more than a byte of zeros after it


@pytest.mark.parametrize("extra", [1, 2, 3, 15, 16, 17, 18, 100, 269, 272, 600])
def test_blocks_filled_by_any_number_of_bytes_decode_to_the_same_audio(extra):
    """Every fill size, around the 15-byte escape and the 269-byte element limit included."""
    import av

    if "m4b" not in supported_output_formats():
        pytest.skip("this installation has no AAC encoder")
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format, encoder.bit_rate = 44100, "mono", "fltp", 64000
    noise = (0.1 * np.random.default_rng(2).standard_normal(44100)).astype(np.float32)
    packets = []
    for start in range(0, noise.size, 1024):
        frame = av.AudioFrame.from_ndarray(noise[None, start:start + 1024].copy(), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, start
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]

    def decoded(blocks):
        decoder = av.CodecContext.create("aac", "r")
        decoder.extradata = encoder.extradata
        return np.concatenate([f.to_ndarray().reshape(-1) for b in blocks for f in decoder.decode(av.Packet(b))])

    filled = [mp4._fill(p, len(p) + extra) for p in packets]
    assert all(f is not None and len(p) <= len(f) <= len(p) + extra for p, f in zip(packets, filled))
    assert extra < 2 or all(len(f) >= len(p) + extra - 1 for p, f in zip(packets, filled))  # at most a byte short
    assert np.array_equal(decoded(filled), decoded(packets))
