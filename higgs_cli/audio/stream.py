"""Writing audio while it is still being generated."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import soundfile as sf

from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.fsutil import atomic_path

_STREAMABLE = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}


def _pcm16(chunk: np.ndarray) -> bytes:
    return (np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def stream_wav(out: BinaryIO, chunks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE) -> int:
    """Write a 16-bit mono WAV to a pipe as chunks arrive; returns the samples written.

    The header declares the largest possible length, as streaming WAV writers
    do, since the real length is unknown until the end.
    """
    unknown = 0xFFFFFFFF
    out.write(b"RIFF" + struct.pack("<I", unknown) + b"WAVE")
    out.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16))
    out.write(b"data" + struct.pack("<I", unknown))
    written = 0
    for chunk in chunks:
        out.write(_pcm16(chunk))
        out.flush()
        written += len(chunk)
    return written


def stream_to_file(path: str | os.PathLike, chunks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE) -> int:
    """Append chunks to an audio file as they arrive; it appears at `path` only when complete."""
    from higgs_cli.errors import UsageError

    ext = os.path.splitext(str(path))[1].lower().lstrip(".")
    if ext not in _STREAMABLE:
        raise UsageError(f"--stream writes .wav, .flac or .ogg, not '.{ext}'")
    fmt, subtype = _STREAMABLE[ext]
    written = 0
    with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=1, format=fmt,
                                                subtype=subtype) as sink:
        for chunk in chunks:
            sink.write(np.clip(chunk, -1.0, 1.0))
            sink.flush()
            written += len(chunk)
    return written
