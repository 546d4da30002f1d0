"""Reading what libsndfile cannot (M4B/M4A/AAC, and most other media) through PyAV.

PyAV links its own FFmpeg libraries, so no ffmpeg program is needed. Frames are
converted to packed float32 in the file's own rate and channel layout and
handed on block by block; downmixing and resampling are the caller's
(io.py's `_Decoder`), as for every other format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from higgs_cli.errors import AudioError


class NotDecodable(Exception):
    """PyAV could not open the file, or it holds no audio stream: the message says why."""


def av_blocks(path: Path, *, max_seconds: float | None,
              check_length: Callable[[Path, float, float | None], None]) -> Iterator[tuple[int, np.ndarray]]:
    """The file's audio as (sample rate, block of frames x channels float32) pairs, the rate that of
    the first decoded frame throughout (HE-AAC declares half its rate in the header).

    The duration in the header is checked before decoding (`check_length`);
    the decoded length is checked again by the caller as blocks arrive.
    """
    try:
        import av
    except ImportError:  # av is a dependency; a broken install says so
        raise NotDecodable("PyAV is not installed") from None
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise NotDecodable(_reason(error)) from None
    streams = container.streams.audio
    if not streams:
        container.close()
        raise NotDecodable("no audio stream")
    stream = streams[0]
    if container.duration:  # microseconds (AV_TIME_BASE)
        try:
            check_length(path, container.duration / 1_000_000, max_seconds)
        except AudioError:
            container.close()
            raise
    return _frames(container, stream, path)


def _frames(container, stream, path: Path) -> Iterator[tuple[int, np.ndarray]]:
    import av

    resampler, rate, channels = None, 0, 1
    with container:
        try:
            for frame in container.decode(stream):
                if resampler is None:  # packed float32 in the first frame's rate and layout
                    rate, channels = int(frame.sample_rate), len(frame.layout.channels)
                    resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=rate)
                for out in resampler.resample(frame):
                    yield rate, out.to_ndarray().reshape(-1, channels)
            if resampler is not None:
                for out in resampler.resample(None):
                    yield rate, out.to_ndarray().reshape(-1, channels)
        except av.FFmpegError as error:
            raise AudioError(f"{path} is damaged: {_reason(error)}",
                             hint="export the file again, or convert it to WAV or FLAC") from None


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip().rstrip(".")
