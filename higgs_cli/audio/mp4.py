"""AAC in MP4 (`.m4b`, the audiobook container) through PyAV, with chapters.

PyAV links its own FFmpeg, so an M4B needs no ffmpeg binary. Audio arrives in
blocks at the rate it was made; it is resampled on the way (soxr, as the other
formats are) and handed to the AAC encoder frame by frame, so a long book
never sits whole in memory. Chapters go in at mux time, where FFmpeg's MP4
muxer writes them as both a Nero `chpl` box and a QuickTime chapter track,
the two that players read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from higgs_cli.errors import AudioError

DEFAULT_M4B_RATE = 44_100  # the rate AAC players and audiobook stores expect
_MS = Fraction(1, 1000)
_SHARE, _LOWEST_SHARE = 0.85, 0.3  # of the bitrate, asked of the encoder (see _ConstantRate)
_MAX_FRAME_BYTES = 6144 // 8  # what an AAC-LC frame of one channel may hold


@dataclass(frozen=True)
class Chapter:
    """A chapter of a delivered file: seconds from the file's start, and its title."""

    start: float
    end: float
    title: str


@functools.cache
def aac_available() -> bool:
    """True when PyAV is installed and its FFmpeg has an AAC encoder and the MP4 muxer."""
    try:
        import av
    except ImportError:
        return False
    return "aac" in av.codecs_available and "ipod" in av.formats_available


def encode_m4b(path: Path, blocks: Iterable[np.ndarray], *, rate: int, bitrate_kbps: int,
               resample: Callable[[np.ndarray], np.ndarray], flush: Callable[[], np.ndarray],
               chapters: Sequence[Chapter] = (), metadata: dict[str, str] | None = None) -> int:
    """Encode mono `blocks` (already at `rate` after `resample`) into `path`; return the frames written.

    `path` is a temporary name the caller renames into place; on any error it may hold a partial file.
    """
    if not aac_available():
        raise AudioError("cannot write an M4B: PyAV (the `av` package) with an AAC encoder is not installed",
                         hint="reinstall higgs (pip install higgs-cli) to get its dependencies")
    import av

    written = 0
    try:
        with av.open(str(path), "w", format="ipod") as container:
            stream = container.add_stream("aac", rate=rate, layout="mono")
            padder = _ConstantRate(stream.codec_context, int(bitrate_kbps) * 1000, rate)
            for key, value in (metadata or {}).items():
                container.metadata[key] = value
            if chapters:
                container.set_chapters([
                    {"id": i + 1, "start": round(c.start * 1000), "end": round(c.end * 1000), "time_base": _MS,
                     "metadata": {"title": c.title}} for i, c in enumerate(chapters)])

            def push(samples: np.ndarray | None) -> None:
                nonlocal written
                if samples is None:
                    frame = None
                else:
                    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32).reshape(1, -1),
                                                       format="fltp", layout="mono")
                    frame.sample_rate, frame.pts = rate, written
                    written += samples.size
                for packet in stream.encode(frame):
                    container.mux(padder(packet))

            for block in blocks:
                data = np.asarray(block, dtype=np.float32)
                if not np.isfinite(data).all():
                    raise AudioError(f"cannot write {path.name}: the audio contains NaN or infinite samples")
                if data.size:
                    push(np.clip(resample(data), -1.0, 1.0))
            tail = flush()
            if tail.size:
                push(np.clip(tail, -1.0, 1.0))
            if not written:
                raise AudioError(f"nothing to write to {path.name}: the audio is empty")
            push(None)
    except av.FFmpegError as error:
        raise AudioError(f"could not encode {path.name} as AAC: {error}") from None
    return written


class _ConstantRate:
    """Holds an AAC stream at `bit_rate` bits a second: FFmpeg's encoder takes its bitrate as a
    target it may miss by a third either way (fewer bits for speech and pauses, more for noise).

    It reads its bitrate anew for every frame, so after each packet the bitrate
    asked of it is steered by how far the stream is ahead of or behind the
    bitrate wanted (85% of it when on time, 30% to 100%); what it leaves unspent
    is filled up with fill elements (ISO 14496-3 ID_FIL, EXT_FILL), which every
    decoder skips: the decoded audio is what the encoder made.
    """

    def __init__(self, codec, bit_rate: int, rate: int) -> None:
        self.codec, self.bit_rate = codec, bit_rate
        self.bits_per_frame = bit_rate * 1024 / rate  # an AAC-LC frame is 1024 samples
        self.frames = 0
        self.written = 0  # bytes
        codec.bit_rate = int(bit_rate * _SHARE)

    def __call__(self, packet):
        import av

        self.frames += 1
        data = bytes(packet)
        want = min(_MAX_FRAME_BYTES, int(self.frames * self.bits_per_frame / 8) - self.written)
        if want > len(data):
            padded = _fill(data, want)
            if padded is not None:
                new = av.Packet(padded)
                new.pts, new.dts, new.duration = packet.pts, packet.dts, packet.duration
                new.time_base, new.stream = packet.time_base, packet.stream
                packet, data = new, padded
        self.written += len(data)
        ahead = self.written * 8 - self.frames * self.bits_per_frame  # bits over the budget so far
        share = _SHARE - ahead / (8 * self.bits_per_frame)  # back on time within about 8 frames
        self.codec.bit_rate = int(self.bit_rate * min(1.0, max(_LOWEST_SHARE, share)))
        return packet


_ID_FIL, _ID_END = 0b110, 0b111


def _fill(data: bytes, size: int) -> bytes | None:
    """The raw AAC block `data` grown to at most `size` bytes by fill elements before its ID_END;
    None when it does not end as FFmpeg writes a block (ID_END, then zero bits to the byte)."""
    bits = int.from_bytes(data, "big")
    if not bits:
        return None
    zeros = (bits & -bits).bit_length() - 1  # the alignment bits after ID_END
    if zeros >= 8 or (bits >> zeros) & 0b111 != _ID_END:
        return None
    out, length = bits >> (zeros + 3), len(data) * 8 - zeros - 3  # the block without ID_END
    room = size * 8 - length - 3  # bits for fill elements, leaving room for ID_END
    while room >= 3 + 4 + 8:  # the smallest element: id, count 1, the extension type and fill nibble
        count = (room - 7) // 8  # bytes after the 7 bits of id and count
        escape = count >= 15  # counts of 15 and more take an escape byte (count = 14 + its value)
        if escape:
            count = min((room - 15) // 8, 15 + 255 - 1)
            escape = count >= 15
            count = count if escape else 14
        out = (out << 3) | _ID_FIL
        out = (out << 12) | (15 << 8) | (count - 14) if escape else (out << 4) | count
        out = (out << 8) | 0b0000_0000  # extension_type EXT_FILL (0000), fill_nibble 0000
        for _ in range(count - 1):
            out = (out << 8) | 0b1010_0101  # fill_byte
        used = 7 + (8 if escape else 0) + 8 * count
        length += used
        room -= used
    out, length = (out << 3) | _ID_END, length + 3
    pad = -length % 8
    return (out << pad).to_bytes((length + pad) // 8, "big")
