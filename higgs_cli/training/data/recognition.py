"""Speech recognition for preparation: the guards' Whisper pipeline (engine/asr.py) and their word
error rate (project/building/guards_asr.py), used to transcribe untranscribed recordings and to
catch a transcript that does not match its audio. What it heard is cached by content, so a later
`prepare` or `train` on the same data runs no recognition either."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.fsutil import atomic_write_text, read_capped_text
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.project.building.guards_asr import word_error_rate

Recognizer = Callable[[np.ndarray, int], str]  # (audio, sample rate) -> text, as the guards' transcriber
MAX_WER = GuardSettings.max_wer  # the guards' threshold: above it, a transcript does not match its audio
OPTION = "--asr-model"
INSTALL_HINT = ("transcribing needs a local Whisper checkpoint: download one (e.g. `hf download "
                "openai/whisper-small --local-dir whisper`) and pass --asr-model whisper; or give each "
                "recording a same-named .txt transcript")
KEY_VERSION = b"higgs-train-heard-1"
MAX_HEARD_BYTES = 64 << 10


class LazyRecognizer:
    """A Whisper checkpoint (a folder, or a model name in the local Hugging Face cache) loaded at the
    first clip it hears, on `device` (None: the CPU)."""

    def __init__(self, source: str, device: str | None = None) -> None:
        self.source = source
        self.device = device
        self._transcribe: Recognizer | None = None

    @functools.cached_property
    def identity(self) -> str:
        """The checkpoint's fingerprint, read from its files (no weights loaded)."""
        from higgs_cli.engine.asr import local_folder
        from higgs_cli.engine.checkpoint import fingerprint_folder

        return fingerprint_folder(Path(local_folder(self.source, what=OPTION, hint=INSTALL_HINT)))

    def __call__(self, audio: np.ndarray, sample_rate: int) -> str:
        if self._transcribe is None:
            from higgs_cli.engine.asr import check_device, load_transcriber

            device = check_device(self.device, what=OPTION) if self.device else None
            self._transcribe = load_transcriber(self.source, device=device, what=OPTION, hint=INSTALL_HINT)
        return self._transcribe(audio, sample_rate)


class HeardCache:
    """A recognizer whose answers are kept in `folder` as `<sha256>.txt`, keyed by the clip's samples,
    its rate and the recognizer's `identity` (a checkpoint's fingerprint); a LazyRecognizer loads its
    checkpoint only on a miss."""

    def __init__(self, recognizer: Recognizer, folder: Path, identity: str) -> None:
        self.recognizer = recognizer
        self.folder = folder
        self.identity = identity

    def __call__(self, audio: np.ndarray, sample_rate: int) -> str:
        h = hashlib.sha256(KEY_VERSION + b"\0" + self.identity.encode() + b"\0" + str(sample_rate).encode())
        h.update(np.ascontiguousarray(audio, dtype="<f4").tobytes())
        path = self.folder / f"{h.hexdigest()}.txt"
        if path.is_file():
            with contextlib.suppress(UsageError):  # unreadable: heard again
                return read_capped_text(path, MAX_HEARD_BYTES, what="cached transcript")
        text = self.recognizer(audio, sample_rate)
        with contextlib.suppress(OSError, HiggsError):  # caching is best effort
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        return text


def no_recognizer(count: int) -> UsageError:
    """The error for DATA whose recordings all lack transcripts, with nothing to transcribe them."""
    return UsageError(f"{count} recording(s) have no transcript and no speech recognition was given to "
                      "transcribe them", hint=INSTALL_HINT)


def mismatch(text: str, heard: str, max_wer: float = MAX_WER) -> str | None:
    """The dropped-clip reason when recognition heard something else than `text`, or None."""
    wer = word_error_rate(text, heard)
    if wer is None or wer <= max_wer:
        return None
    shown = heard if len(heard) <= 60 else heard[:57] + "..."
    return f"the transcript does not match its audio: recognition heard {shown!r} (word error rate {wer:.2f})"
