"""The speech endpoint's audio: response formats in memory, time-stretching, uploaded clips.

Everything happens in memory: nothing is read from or written to the server's
disk on a request's behalf. Uploaded audio is checked (size, header duration)
before it is decoded.
"""

from __future__ import annotations

import functools
import io
import struct

import numpy as np
import soundfile as sf

from higgs_cli.engine.request import SAMPLE_RATE

# response_format -> (libsndfile format, subtype); pcm is raw 16-bit little-endian samples, aac is
# AAC in ADTS frames (what OpenAI sends) through PyAV, as M4B files are written
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"),
           "opus": ("OGG", "OPUS"), "aac": None, "pcm": None}
MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg",
               "aac": "audio/aac", "pcm": "audio/pcm"}
AAC_BITRATE = 96_000
STREAMED = ("pcm", "wav")  # formats sent chunk by chunk as the audio is generated
SPEED_RANGE = (0.25, 4.0)
MAX_UPLOAD_RATE = 192_000  # the highest sample rate an uploaded reference may have
MAX_UPLOAD_CHANNELS = 8


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def wav_stream_header(sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit mono WAV header of unknown length (the largest sizes), as streaming writers send."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", unknown))


def encode(audio: np.ndarray, fmt: str) -> bytes:
    """A whole file of `fmt` in memory (24 kHz mono)."""
    if fmt == "pcm":
        return pcm16(audio)
    if fmt == "aac":
        return _aac(audio)
    container, subtype = FORMATS[fmt]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", SAMPLE_RATE, 1, subtype=subtype, format=container) as sink:
        sink.write(np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0))
    if container == "OGG":  # libsndfile's random stream serial: the same audio would differ between answers
        from higgs_cli.audio.ogg import with_fixed_serial

        return with_fixed_serial(buffer.getvalue())
    return buffer.getvalue()


def _aac(audio: np.ndarray) -> bytes:
    """AAC-LC in ADTS frames, 24 kHz mono, in memory (PyAV's FFmpeg encoder)."""
    from higgs_cli.audio.mp4 import aac_available

    if not aac_available():
        raise RuntimeError("PyAV with an AAC encoder is not installed")
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = AAC_BITRATE
        samples = np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, 0
        for frame_or_flush in (frame, None):
            for packet in stream.encode(frame_or_flush):
                container.mux(packet)
    return buffer.getvalue()


@functools.cache
def encodable() -> tuple[str, ...]:
    """The response formats this machine's libsndfile can encode (tried once on a short tone)."""
    tone = (0.1 * np.sin(np.arange(SAMPLE_RATE // 10) / 10)).astype(np.float32)
    ok = []
    for fmt in FORMATS:
        try:
            encode(tone, fmt)
            ok.append(fmt)
        except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError):
            pass
    return tuple(ok)


def can_stretch() -> bool:
    """Time-stretching uses FFmpeg's atempo filter through PyAV (its own FFmpeg libraries, no program)."""
    try:
        import av.filter
    except ImportError:
        return False
    return {"abuffer", "atempo", "abuffersink"} <= set(av.filter.filters_available)


def stretch(audio: np.ndarray, speed: float) -> np.ndarray:
    """`audio` played `speed` times faster at the same pitch (FFmpeg's atempo in a PyAV filter graph)."""
    if speed == 1.0 or not len(audio):
        return audio
    from fractions import Fraction

    import av
    import av.filter

    factors, left = [], speed
    while left > 2.0:  # one atempo stage takes 0.5 to 2.0 (newer FFmpeg more): chain them
        factors.append(2.0)
        left /= 2.0
    while left < 0.5:
        factors.append(0.5)
        left /= 0.5
    factors.append(left)
    graph = av.filter.Graph()
    source = node = graph.add_abuffer(format="flt", sample_rate=SAMPLE_RATE, layout="mono",
                                      time_base=Fraction(1, SAMPLE_RATE))
    for factor in factors:
        stage = graph.add("atempo", f"{factor:.6f}")
        node.link_to(stage)
        node = stage
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(1, -1))
    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                out.append(sink.pull().to_ndarray().reshape(-1))
            except (av.error.BlockingIOError, av.error.EOFError):  # wants more input, or finished
                return

    step = 1 << 14
    for start in range(0, samples.shape[1], step):
        frame = av.AudioFrame.from_ndarray(samples[:, start:start + step].copy(), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
        source.push(frame)
        drain()
    source.push(None)
    drain()
    return np.concatenate(out) if out else np.zeros(0, np.float32)


class UploadError(ValueError):
    """Uploaded bytes that are not usable audio (the message says why)."""


def decode_upload(data: bytes, *, max_seconds: float, max_decoded_bytes: int = 64 * 2**20) -> np.ndarray:
    """An uploaded clip (WAV, FLAC, OGG or MP3 bytes) as 24 kHz mono float32, decoded in memory.

    The duration, rate and channels are read from the header first, so a clip too long or too large
    in memory is refused before it is decoded. Called off the event loop (it may take a while).
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as source:
            rate, channels = source.samplerate, source.channels
            if not 1_000 <= rate <= MAX_UPLOAD_RATE:
                raise UploadError(f"a sample rate of {rate} Hz is not usable (at most {MAX_UPLOAD_RATE} Hz)")
            if not 1 <= channels <= MAX_UPLOAD_CHANNELS:
                raise UploadError(f"{channels} channels is more than the {MAX_UPLOAD_CHANNELS} a reference may have")
            if source.frames > max_seconds * rate:
                raise UploadError(f"the clip is {source.frames / rate:.1f} s long; at most {max_seconds:g} s")
            decoded = min(source.frames, int(max_seconds * rate) + 1) * channels * 4
            if decoded > max_decoded_bytes:  # checked before a sample is decoded
                raise UploadError(f"the clip would decode to {decoded / 2**20:.0f} MiB of samples ({channels} "
                                  f"channels at {rate} Hz); at most {max_decoded_bytes / 2**20:.0f} MiB")
            audio = source.read(frames=int(max_seconds * rate) + 1, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise UploadError(f"not audio this server can read (WAV, FLAC, OGG or MP3): {error}") from None
    if len(audio) > max_seconds * rate:
        raise UploadError(f"the clip is longer than {max_seconds:g} s")
    mono = audio.mean(axis=1)
    if not len(mono) or not np.isfinite(mono).all():
        raise UploadError("the clip has no samples, or NaN or infinite ones")
    if rate != SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, rate, SAMPLE_RATE).astype(np.float32)
    return np.ascontiguousarray(np.clip(mono, -1.0, 1.0), dtype=np.float32)
