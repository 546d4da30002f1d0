"""Audio in and out: reading any file as 24 kHz mono, writing results, mastering, subtitles.

numpy, soundfile and soxr only at import time; scipy and mutagen load when
a function needs them, so the CLI starts fast.
"""

from higgs_cli.audio.io import (
    SAMPLE_RATE,
    duration,
    is_silent,
    load_audio,
    peak_db,
    supported_output_formats,
    write_audio,
)

__all__ = [
    "SAMPLE_RATE",
    "duration",
    "is_silent",
    "load_audio",
    "peak_db",
    "supported_output_formats",
    "write_audio",
]
