"""Reference-audio preparation: any recording as a voice reference (24 kHz mono, -1 dBFS peak).

Library voices and a project's own `audio:` recordings are prepared here alike,
so a voice sounds the same whichever way it reaches the model.
"""

from __future__ import annotations

import os

import numpy as np

from higgs_cli.audio import io as audio_io
from higgs_cli.audio.master import trim_silence
from higgs_cli.errors import AudioError

MIN_SECONDS = 0.5
MAX_SECONDS = 60.0
BEST_SECONDS = (3.0, 30.0)  # what clones best; MIN_SECONDS to MAX_SECONDS is accepted, with a warning outside this
READ_LIMIT_SECONDS = 600.0  # longer files are refused before decoding all of them, even with --trim
REFERENCE_PEAK_DB = -1.0
_REFERENCE_HINT = (f"a voice reference is {BEST_SECONDS[0]:g}-{BEST_SECONDS[1]:g} s of clear speech from one speaker "
                   f"({MIN_SECONDS:g}-{MAX_SECONDS:g} s is accepted)")


def length_advice(seconds: float) -> str | None:
    """A warning for a reference outside BEST_SECONDS (it is accepted, but clones less well); None inside."""
    low, high = BEST_SECONDS
    if seconds < low:
        return f"the recording is {seconds:.1f} s long; a voice clones best from {low:g}-{high:g} s (a longer take)"
    if seconds > high:
        return (f"the recording is {seconds:.1f} s long; a voice clones best from {low:g}-{high:g} s "
                f"(a shorter take, or --trim for silent edges)")
    return None


def prepare_reference(audio_path: str | os.PathLike, *, trim: bool = False) -> np.ndarray:
    """Any audio file as a reference: 24 kHz mono, edges trimmed if asked, peak at -1 dBFS."""
    audio = audio_io.load_audio(audio_path, max_seconds=READ_LIMIT_SECONDS)
    if audio_io.is_silent(audio):
        raise AudioError(f"{audio_path} is silent", hint=_REFERENCE_HINT)
    if trim:
        audio = trim_silence(audio)
    seconds = audio_io.duration(audio)
    after = " after trimming" if trim else ""
    if seconds < MIN_SECONDS:
        raise AudioError(f"{audio_path} has {seconds:.2f} s of audio{after}; a voice needs at least {MIN_SECONDS} s",
                         hint=_REFERENCE_HINT)
    if seconds > MAX_SECONDS:
        raise AudioError(f"{audio_path} is {seconds:.1f} s long{after}; a voice can be at most {MAX_SECONDS:g} s",
                         hint=_REFERENCE_HINT + ("" if trim else "; --trim cuts silent edges"))
    return peak_normalize(audio, REFERENCE_PEAK_DB)


def peak_normalize(audio: np.ndarray, peak_db: float) -> np.ndarray:
    """`audio` scaled so its highest sample peak is `peak_db` dBFS (audio that is not silent)."""
    gain = 10.0 ** (peak_db / 20.0) / float(np.max(np.abs(audio)))
    return (audio * gain).astype(np.float32)
