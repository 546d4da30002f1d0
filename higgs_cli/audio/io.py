"""Read any audio file as 24 kHz mono float32; write results atomically.

Reading never refuses a usual sample rate or a channel count: it downmixes and
resamples. It refuses, with a message naming the file, only what cannot be
used: a missing file, a folder, something that is not audio, a sample rate
outside 1 to 768 kHz, no samples, NaN or infinite samples, or more seconds
than the caller allows (judged from the header before decoding, and again
while decoding). Files are decoded block by block into 24 kHz mono, so memory
follows the length of the result, not the size or rate of the file; `audio_blocks`
hands the result out in blocks, for recordings too long to hold whole.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from higgs_cli.audio import bitrates
from higgs_cli.audio.mp4 import Chapter, aac_available, encode_m4b
from higgs_cli.audio.ogg import fix_serial
from higgs_cli.audio.tags import Cover, clean_tags, write_chapters, write_cover, write_tags
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import AudioError, UsageError
from higgs_cli.fsutil import atomic_path

__all__ = ["DEFAULT_MP3_KBPS", "M4B", "Chapter", "Cover", "file_rate", "MP3_BITRATES_KBPS",
           "SAMPLE_RATE", "audio_blocks", "duration", "is_silent",
           "can_write", "load_audio", "peak_db", "supported_output_formats", "write_audio", "write_audio_blocks"]

MIN_RATE, MAX_RATE = 1_000, 768_000
_BLOCK_FRAMES = 1 << 16
_READ_HINT = "use a WAV, FLAC, OGG, MP3 or M4A/M4B file; convert other formats first (for example with ffmpeg)"

# extension -> (libsndfile format, subtype)
_OUTPUT_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
M4B = "m4b"  # AAC in MP4, written through PyAV (mp4.py), not libsndfile


def load_audio(path: str | os.PathLike, *, max_seconds: float | None = None) -> np.ndarray:
    """Read `path` as float32 mono at SAMPLE_RATE, clipped to [-1, 1]."""
    [audio] = audio_blocks(path, max_seconds=max_seconds, block_seconds=None)
    return audio


def audio_blocks(path: str | os.PathLike, *, max_seconds: float | None = None,
                 block_seconds: float | None = 60.0) -> Iterator[np.ndarray]:
    """`path` as float32 mono at SAMPLE_RATE, clipped to [-1, 1], in blocks of at least `block_seconds`
    (the last may be shorter; None: one block, the whole file): a long recording is read without
    holding all of it. What `load_audio` refuses is refused when it is met."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file {path} does not exist", hint="check the path and the spelling of the file name")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file", hint="give the path of one audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is an empty file (0 bytes)", hint="export or record the audio again")
    chunks = _read_soundfile(path, max_seconds)
    try:
        first = next(chunks)  # a decoder yields at least its tail, or raises
    except _UnknownFormat as unknown:
        chunks = _read_pyav(path, max_seconds, why=str(unknown))
        first = next(chunks)
    size = math.inf if block_seconds is None else max(1, int(block_seconds * SAMPLE_RATE))
    held, count = [first], len(first)
    for chunk in chunks:
        if count >= size:
            yield _finished(held)
            held, count = [], 0
        held.append(chunk)
        count += len(chunk)
    yield _finished(held)


def _finished(chunks: list[np.ndarray]) -> np.ndarray:
    audio = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    return np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)


class _Decoder:
    """Blocks of (frames x channels) samples in, 24 kHz mono out: downmixed and resampled as they come."""

    def __init__(self, path: Path, rate: int, max_seconds: float | None) -> None:
        if not MIN_RATE <= rate <= MAX_RATE:
            raise AudioError(f"{path} declares a sample rate of {rate} Hz; higgs reads {MIN_RATE} to {MAX_RATE} Hz",
                             hint=_READ_HINT)
        self.path, self.rate, self.max_seconds = path, rate, max_seconds
        self.frames = 0
        self.made = 0  # 24 kHz samples handed out
        self.resampler = None
        if rate != SAMPLE_RATE:
            import soxr

            self.resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float64", quality="HQ")

    def add(self, data: np.ndarray) -> np.ndarray:
        """The 24 kHz mono samples that `data` completes (a resampler holds a few back)."""
        if not np.isfinite(data).all():
            raise AudioError(f"{self.path} contains NaN or infinite samples",
                             hint="the file is damaged; export it again")
        self.frames += data.shape[0]
        _check_length(self.path, self.frames / self.rate, self.max_seconds)
        mono = data.mean(axis=1, dtype=np.float64) if data.shape[1] > 1 else data[:, 0].astype(np.float64)
        out = self.resampler.resample_chunk(mono) if self.resampler else mono
        self.made += len(out)
        return out

    def finish(self) -> np.ndarray:
        """The last samples; AudioError when the file gave none."""
        if self.frames == 0:
            raise AudioError(f"{self.path} contains no audio samples", hint="export or record the audio again")
        tail = self.resampler.resample_chunk(np.zeros(0), last=True) if self.resampler is not None else np.zeros(0)
        self.made += len(tail)
        if self.made == 0:
            raise AudioError(f"{self.path} is too short to use ({self.frames} samples)", hint="use a longer recording")
        return tail


def _check_length(path: Path, seconds: float, max_seconds: float | None) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(f"{path} is {seconds:.1f} s long; at most {max_seconds:g} s is allowed here",
                         hint="cut the audio shorter and try again")


class _UnknownFormat(Exception):
    """libsndfile could not open the file; another decoder may."""


def _read_soundfile(path: Path, max_seconds: float | None) -> Iterator[np.ndarray]:
    """The file decoded block by block into 24 kHz mono chunks; _UnknownFormat (before any chunk)
    when libsndfile cannot open it."""
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise _UnknownFormat((getattr(error, "error_string", None) or str(error)).strip().rstrip(".")) from None
    with handle:
        rate = int(handle.samplerate)
        if rate <= 0:
            raise AudioError(f"{path} declares an invalid sample rate ({rate})", hint=_READ_HINT)
        decoder = _Decoder(path, rate, max_seconds)
        if handle.frames > 0:
            _check_length(path, handle.frames / rate, max_seconds)
        while True:
            try:
                data = handle.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                chunk = decoder.add(data)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"{path} is damaged: {error}", hint=_READ_HINT) from None
            yield chunk
    yield decoder.finish()


def _read_pyav(path: Path, max_seconds: float | None, *, why: str) -> Iterator[np.ndarray]:
    """Decode through PyAV (its own FFmpeg libraries: M4B, AAC and most media; no ffmpeg program)."""
    from higgs_cli.audio.av_read import NotDecodable, av_blocks

    decoder = None
    try:
        for rate, block in av_blocks(path, max_seconds=max_seconds, check_length=_check_length):
            if decoder is None:
                decoder = _Decoder(path, rate, max_seconds)
            if block.shape[0]:
                yield decoder.add(block)
    except NotDecodable:
        raise AudioError(f"{path} is not a readable audio file ({why})", hint=_READ_HINT) from None
    if decoder is None:
        raise AudioError(f"{path} contains no audio samples", hint="export or record the audio again")
    yield decoder.finish()


@functools.cache
def supported_output_formats() -> list[str]:
    """File extensions (without the dot) that write_audio can produce with this libsndfile."""
    return [ext for ext in _OUTPUT_FORMATS if ext in _sndfile_formats()] + ([M4B] if aac_available() else [])


def can_write(ext: str) -> bool:
    """Whether write_audio can produce `ext` (no dot). Asks PyAV (about 0.1 s to import) only for M4B."""
    if ext == M4B:
        return aac_available()
    return ext in _sndfile_formats()


@functools.cache
def _sndfile_formats() -> frozenset[str]:
    formats = sf.available_formats()
    return frozenset(ext for ext, (fmt, subtype) in _OUTPUT_FORMATS.items()
                     if fmt in formats and subtype in sf.available_subtypes(fmt))


MP3_BITRATES_KBPS = bitrates.ALL_KBPS  # what some format and rate allows; allowed_kbps says which
DEFAULT_MP3_KBPS = bitrates.DEFAULT_KBPS
MP3_SAMPLE_RATE = 44_100
"""MP3 is encoded at 44.1 kHz when the audio is slower than 32 kHz: only MPEG-1 rates carry more than
160 kbps, and MP3 delivery specs (ACX audiobooks: 192 kbps CBR, 44.1 kHz) ask for 44.1 kHz."""


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, *,
                tags: Mapping[str, str | None] | None = None, bitrate_kbps: int | None = None,
                rate: int | None = None) -> Path:
    """Write `audio` (mono, or frames x channels) to `path`; the extension picks the format.

    `tags` (title, artist, album, composer) go into the file's metadata; `bitrate_kbps`
    is the constant bitrate of MP3 and M4B (default DEFAULT_MP3_KBPS, or the most under it the
    format carries at the file's rate; other formats ignore it;
    one the format cannot carry at the file's rate is refused, see bitrates.py);
    `rate` the file's sample rate (default: `file_rate`).
    """
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim not in (1, 2):
        raise ValueError(f"audio must be 1-D or frames x channels, got shape {data.shape}")
    return write_audio_blocks(path, [data], sample_rate, channels=1 if data.ndim == 1 else data.shape[1],
                              tags=tags, bitrate_kbps=bitrate_kbps, rate=rate)


def file_rate(ext: str, sample_rate: int, rate: int | None = None) -> int:
    """The sample rate a file of format `ext` gets from audio at `sample_rate`: `rate` when given, else
    44.1 kHz for M4B and for an MP3 of audio under 32 kHz (see MP3_SAMPLE_RATE), else `sample_rate`."""
    if rate is not None:
        return int(rate)
    if ext == M4B or (ext == "mp3" and sample_rate < 32_000):
        return MP3_SAMPLE_RATE
    return int(sample_rate)


def write_audio_blocks(path: str | os.PathLike, blocks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE, *,
                       channels: int = 1, tags: Mapping[str, str | None] | None = None,
                       bitrate_kbps: int | None = None, rate: int | None = None,
                       chapters: Sequence[Chapter] = (), cover: Cover | None = None) -> Path:
    """`write_audio` for audio that arrives in blocks (a long track): one block in memory at a time.

    `chapters` (seconds in the file) and a `cover` image go into MP3 (ID3 CHAP/CTOC, APIC) and
    M4B files; other formats have no place for them and ignore them.
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if not can_write(ext):
        supported = supported_output_formats()
        shown = f"'.{ext}'" if ext else "no extension"
        raise UsageError(f"cannot write {path}: {shown} is not a supported audio format",
                         hint="end the file name with one of: " + ", ".join(f".{e}" for e in supported))
    tags = clean_tags(tags)
    rate = file_rate(ext, int(sample_rate), rate)
    bitrates.check_bitrate(ext, rate, bitrate_kbps, where=f"cannot write {path}: ")
    kbps = bitrate_kbps or bitrates.default_kbps(ext, rate)
    resample = _Resample(int(sample_rate), rate, channels)
    if ext == M4B:
        if channels != 1:
            raise ValueError("an M4B is written from mono audio")
        with atomic_path(path) as tmp:
            encode_m4b(tmp, blocks, rate=rate, bitrate_kbps=kbps, resample=resample,
                       flush=resample.flush, chapters=chapters)
            write_tags(tmp, ext, tags)
            write_cover(tmp, ext, cover)
        return path
    fmt, subtype = _OUTPUT_FORMATS[ext]
    options: dict = {}
    if ext == "mp3":
        options = {"bitrate_mode": "CONSTANT",
                   "compression_level": bitrates.mp3_compression(kbps, rate)}
    written = 0
    try:
        with atomic_path(path) as tmp:
            with sf.SoundFile(str(tmp), "w", rate, channels, subtype=subtype, format=fmt, **options) as sink:
                for block in blocks:
                    data = np.asarray(block, dtype=np.float32)
                    if not np.isfinite(data).all():
                        raise AudioError(f"cannot write {path}: the audio contains NaN or infinite samples")
                    if data.shape[0]:
                        sink.write(np.clip(resample(data), -1.0, 1.0))
                        written += data.shape[0]
                if not written:
                    raise AudioError(f"nothing to write to {path}: the audio is empty")
                sink.write(np.clip(resample.flush(), -1.0, 1.0))
            write_tags(tmp, ext, tags)
            if ext == "ogg":  # libsndfile picks a random stream serial: the same audio would differ
                fix_serial(tmp)
            if ext == "mp3":
                write_chapters(tmp, chapters)
                write_cover(tmp, ext, cover)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"could not write {path}: {error}") from None
    return path


class _Resample:
    """Blocks of audio at `src` Hz in, the same audio at `dst` Hz out, streamed (`flush` gives the tail)."""

    def __init__(self, src: int, dst: int, channels: int) -> None:
        self._empty = np.zeros((0, channels) if channels > 1 else 0, np.float32)
        self._stream = None
        if src != dst:
            import soxr

            self._stream = soxr.ResampleStream(src, dst, channels, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return block if self._stream is None else self._stream.resample_chunk(block)

    def flush(self) -> np.ndarray:
        return self._empty if self._stream is None else self._stream.resample_chunk(self._empty, last=True)


def peak_db(audio: np.ndarray) -> float:
    """The highest absolute sample in dBFS; -inf for empty or all-zero audio."""
    data = np.asarray(audio)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def is_silent(audio: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when no sample reaches `threshold_db` dBFS (empty audio is silent)."""
    return peak_db(audio) < threshold_db


def duration(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Length in seconds."""
    return int(np.asarray(audio).shape[0]) / sample_rate
