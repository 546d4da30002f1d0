"""Reading any audio as 24 kHz mono, refusing what cannot be used, writing atomically."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from higgs_cli.audio.io import (
    DEFAULT_MP3_KBPS,
    SAMPLE_RATE,
    duration,
    is_silent,
    load_audio,
    peak_db,
    supported_output_formats,
    write_audio,
)
from higgs_cli.errors import AudioError, UsageError


def sine(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("rate", [8000, 44100, 96000])
def test_any_rate_becomes_24k_with_same_duration_and_pitch(tmp_path, rate):
    path = tmp_path / "in.wav"
    sf.write(path, sine(1.5, rate), rate)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - 1.5 * SAMPLE_RATE) <= 2
    assert duration(audio) == pytest.approx(1.5, abs=1e-3)
    assert dominant_freq(audio) == pytest.approx(440, abs=2)


def test_stereo_and_six_channels_are_downmixed(tmp_path):
    left = sine(1.0, 44100, amp=0.8)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    sf.write(tmp_path / "stereo.wav", stereo, 44100)
    audio = load_audio(tmp_path / "stereo.wav")
    assert audio.ndim == 1 and audio.size == SAMPLE_RATE
    assert np.abs(audio).max() == pytest.approx(0.4, abs=0.01)  # mean of the channels

    six = np.tile(sine(0.5, 48000, amp=0.3)[:, None], (1, 6))
    sf.write(tmp_path / "six.flac", six, 48000)
    audio = load_audio(tmp_path / "six.flac")
    assert audio.size == SAMPLE_RATE // 2
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.01)


def test_float_wav_over_full_scale_is_clipped(tmp_path):
    sf.write(tmp_path / "loud.wav", 3.0 * sine(0.5, SAMPLE_RATE), SAMPLE_RATE, subtype="FLOAT")
    audio = load_audio(tmp_path / "loud.wav")
    assert audio.max() == 1.0 and audio.min() == -1.0


def test_nan_samples_are_refused(tmp_path):
    x = sine(0.5, SAMPLE_RATE)
    x[100] = np.nan
    sf.write(tmp_path / "nan.wav", x, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(tmp_path / "nan.wav")


def test_mp3_is_read(tmp_path):
    if "mp3" not in supported_output_formats():
        pytest.skip("this libsndfile has no MP3")
    write_audio(tmp_path / "a.mp3", sine(1.0, SAMPLE_RATE))
    audio = load_audio(tmp_path / "a.mp3")
    assert abs(audio.size - SAMPLE_RATE) < 0.05 * SAMPLE_RATE
    assert dominant_freq(audio) == pytest.approx(440, abs=3)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello, this is a text file in disguise\n" * 20), "not a readable audio file"),
])
def test_unusable_inputs_name_the_file(tmp_path, make, message):
    path = tmp_path / "voice.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as caught:
        load_audio(path)
    assert str(path) in caught.value.message
    assert caught.value.hint


def test_truncated_wav(tmp_path):
    sf.write(tmp_path / "full.wav", sine(1.0, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    # cut inside the data: what is there is read
    (tmp_path / "half.wav").write_bytes(data[: len(data) // 2])
    assert load_audio(tmp_path / "half.wav").size == pytest.approx(SAMPLE_RATE / 2, abs=30)
    # cut inside the header: refused
    (tmp_path / "head.wav").write_bytes(data[:30])
    with pytest.raises(AudioError, match="head.wav"):
        load_audio(tmp_path / "head.wav")


def test_wav_header_with_no_samples(tmp_path):
    sf.write(tmp_path / "none.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(tmp_path / "none.wav")


def test_max_seconds(tmp_path):
    sf.write(tmp_path / "long.wav", sine(3.0, 16000), 16000)
    assert load_audio(tmp_path / "long.wav", max_seconds=3.5).size == 3 * SAMPLE_RATE
    with pytest.raises(AudioError, match=r"3\.0 s long; at most 2 s"):
        load_audio(tmp_path / "long.wav", max_seconds=2)


@pytest.mark.parametrize("ext", supported_output_formats())
def test_write_round_trip(tmp_path, ext):
    x = sine(1.0, SAMPLE_RATE)
    path = write_audio(tmp_path / f"out.{ext}", x)
    assert path == tmp_path / f"out.{ext}"
    back = load_audio(path)
    assert abs(back.size - x.size) < 0.05 * x.size
    if ext in ("wav", "flac"):
        assert back.size == x.size
        assert np.abs(back - x).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [f"out.{ext}"]  # no temporary left behind


def test_write_wav_is_pcm16_and_format_follows_extension(tmp_path):
    write_audio(tmp_path / "a.WAV", sine(0.2, SAMPLE_RATE))
    write_audio(tmp_path / "b.flac", sine(0.2, SAMPLE_RATE))
    assert sf.info(tmp_path / "a.WAV").subtype == "PCM_16"
    assert sf.info(tmp_path / "b.flac").format == "FLAC"


def test_write_unknown_extension_lists_supported(tmp_path):
    with pytest.raises(UsageError, match=r"'\.xyz' is not a supported") as caught:
        write_audio(tmp_path / "a.xyz", sine(0.2, SAMPLE_RATE))
    assert ".wav" in caught.value.hint and ".flac" in caught.value.hint
    with pytest.raises(UsageError, match="no extension"):
        write_audio(tmp_path / "noext", sine(0.2, SAMPLE_RATE))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "keep.wav"
    target.write_bytes(b"old")
    bad = sine(0.2, SAMPLE_RATE)
    bad[5] = np.inf
    with pytest.raises(AudioError):
        write_audio(target, bad)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]


def test_levels():
    assert is_silent(np.zeros(100, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert is_silent(np.full(100, 1e-4, np.float32))  # -80 dBFS
    assert not is_silent(np.full(100, 0.01, np.float32))  # -40 dBFS
    assert peak_db(np.array([0.5, -1.0], np.float32)) == pytest.approx(0.0)
    assert peak_db(np.array([0.1], np.float32)) == pytest.approx(-20.0)
    assert peak_db(np.zeros(3)) == -math.inf
    assert duration(np.zeros(36000)) == 1.5


# tags and MP3 bitrate

TAGS = {"title": "游戏对白 Ep [draft]", "artist": "Ana & Bo", "album": "Season 1"}


@pytest.mark.parametrize("ext", supported_output_formats())
def test_tags_are_written_and_read_back_by_mutagen(tmp_path, ext):
    mutagen = pytest.importorskip("mutagen")
    path = write_audio(tmp_path / f"t.{ext}", sine(1.0, SAMPLE_RATE), tags=TAGS)
    tags = mutagen.File(str(path)).tags
    if ext in ("wav", "mp3"):  # ID3 frames
        read = {"title": tags["TIT2"].text[0], "artist": tags["TPE1"].text[0], "album": tags["TALB"].text[0]}
    elif ext == "m4b":  # iTunes atoms
        read = {"title": tags["\xa9nam"][0], "artist": tags["\xa9ART"][0], "album": tags["\xa9alb"][0]}
    else:  # Vorbis comments
        read = {key: tags[key][0] for key in TAGS}
    assert read == TAGS
    assert load_audio(path).size == pytest.approx(SAMPLE_RATE, rel=0.05)  # still plays
    assert [p.name for p in tmp_path.iterdir()] == [f"t.{ext}"]


@pytest.mark.needs_ffmpeg
@pytest.mark.parametrize("ext", ["wav", "flac", "mp3"])
def test_tags_are_read_by_ffprobe(tmp_path, ext):
    if ext not in supported_output_formats():
        pytest.skip(f"this libsndfile cannot write {ext}")
    path = write_audio(tmp_path / f"t.{ext}", sine(1.0, SAMPLE_RATE), tags={"title": TAGS["title"], "artist": None})
    found = {k.lower(): v for k, v in ffprobe(path)["format"].get("tags", {}).items()}
    assert found.get("title") == TAGS["title"] and "artist" not in found


def test_no_tags_and_bad_tags(tmp_path):
    path = write_audio(tmp_path / "plain.flac", sine(0.2, SAMPLE_RATE), tags={"title": "  ", "album": None})
    assert sf.info(path).format == "FLAC"
    with pytest.raises(ValueError, match="unknown audio tags"):
        write_audio(tmp_path / "x.wav", sine(0.2, SAMPLE_RATE), tags={"genre": "talk"})


def ffprobe(path) -> dict:
    out = subprocess.run([shutil.which("ffprobe"), "-v", "error", "-show_entries",
                          "format=bit_rate:format_tags:stream=bit_rate,sample_rate", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.needs_ffmpeg
@pytest.mark.parametrize("kbps", [None, 128, 320])
def test_mp3_is_constant_bitrate_as_asked(tmp_path, kbps):
    if "mp3" not in supported_output_formats():
        pytest.skip("this libsndfile has no MP3")
    noise = (0.3 * np.random.default_rng(0).standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    path = write_audio(tmp_path / "a.mp3", noise, bitrate_kbps=kbps)
    stream = ffprobe(path)["streams"][0]
    assert int(stream["bit_rate"]) == 1000 * (kbps or DEFAULT_MP3_KBPS)
    assert int(stream["sample_rate"]) == 44_100  # 24 kHz MP3 tops out at 160 kbps
    mutagen = pytest.importorskip("mutagen")
    info = mutagen.File(str(path)).info
    assert abs(info.bitrate - 1000 * (kbps or DEFAULT_MP3_KBPS)) < 1000 and info.length == pytest.approx(3.0, abs=0.1)


def test_bad_mp3_bitrate_is_refused(tmp_path):
    with pytest.raises(UsageError, match="150 kbps is not a bitrate an MP3 at 44100 Hz") as caught:
        write_audio(tmp_path / "a.mp3", sine(0.2, SAMPLE_RATE), bitrate_kbps=150)
    assert "192" in caught.value.hint
    assert list(tmp_path.iterdir()) == []


def test_an_ogg_is_the_same_bytes_each_time(tmp_path):
    """Issue 35.7: libsndfile picks a random stream serial; write_audio fixes it (and the page CRCs)."""
    if "ogg" not in supported_output_formats():
        pytest.skip("this libsndfile cannot write ogg")
    audio = sine(2.0, SAMPLE_RATE)
    first = write_audio(tmp_path / "a.ogg", audio, tags={"title": "Same"}).read_bytes()
    second = write_audio(tmp_path / "b.ogg", audio, tags={"title": "Same"}).read_bytes()
    assert first == second
    assert load_audio(tmp_path / "a.ogg").size == pytest.approx(audio.size, abs=2)
    if shutil.which("ffmpeg"):  # an independent reader finds no bad CRC
        done = subprocess.run([shutil.which("ffmpeg"), "-v", "error", "-i", str(tmp_path / "a.ogg"), "-f", "null",
                               "-"], capture_output=True, text=True, check=True)
        assert done.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ogg", "b.ogg"]  # nothing left beside


def test_a_servers_opus_answer_is_the_same_bytes_each_time():
    """The server's in-memory `opus` answer gets the same fixed serial as a written Ogg file."""
    import io

    from higgs_cli.server.audio import FORMATS, encode

    if FORMATS["opus"][1] not in sf.available_subtypes("OGG"):
        pytest.skip("this libsndfile cannot write Ogg Opus")
    audio = 0.2 * np.sin(np.linspace(0, 300, SAMPLE_RATE)).astype(np.float32)
    first, second = encode(audio, "opus"), encode(audio, "opus")
    assert first == second and first[:4] == b"OggS"
    back, rate = sf.read(io.BytesIO(first))
    assert rate == SAMPLE_RATE and abs(len(back) / rate - 1.0) < 0.05  # still a valid Opus stream


@pytest.mark.parametrize("ext, rate", [("wav", 44_100), ("flac", SAMPLE_RATE), ("m4b", SAMPLE_RATE)])
def test_blocks_are_the_file_read_whole_a_block_at_a_time(tmp_path, ext, rate):
    from higgs_cli.audio.io import audio_blocks, can_write

    if not can_write(ext):
        pytest.skip(f"{ext} cannot be written here")
    path = tmp_path / f"long.{ext}"
    if ext == "wav":
        sf.write(path, sine(7.0, rate), rate)
    else:
        write_audio(path, sine(7.0, SAMPLE_RATE), SAMPLE_RATE)
    blocks = list(audio_blocks(path, block_seconds=2.0))
    assert len(blocks) in (3, 4) and all(len(b) >= 2 * SAMPLE_RATE for b in blocks[:-1])
    assert all(b.dtype == np.float32 for b in blocks)
    assert np.array_equal(np.concatenate(blocks), load_audio(path))
    with pytest.raises(AudioError, match="at most 5 s"):
        list(audio_blocks(path, max_seconds=5.0, block_seconds=1.0))
