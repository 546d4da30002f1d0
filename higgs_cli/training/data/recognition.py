"""Speech recognition for preparation: the guards' Whisper pipeline (engine/asr.py) and their word
error rate (project/building/guards_asr.py), used to transcribe untranscribed recordings and to
catch a transcript that does not match its audio."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from higgs_cli.errors import UsageError
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.project.building.guards_asr import word_error_rate

Recognizer = Callable[[np.ndarray, int], str]  # (audio, sample rate) -> text, as the guards' transcriber
MAX_WER = GuardSettings.max_wer  # the guards' threshold: above it, a transcript does not match its audio
INSTALL_HINT = ("transcribing needs a local Whisper checkpoint: download one (e.g. `hf download "
                "openai/whisper-small --local-dir whisper`) and pass --asr-model whisper; or give each "
                "recording a same-named .txt transcript")


class LazyRecognizer:
    """A Whisper checkpoint (a folder, or a model name in the local Hugging Face cache) loaded at the
    first clip it hears, on `device` (None: the CPU)."""

    def __init__(self, source: str, device: str | None = None) -> None:
        self.source = source
        self.device = device
        self._transcribe: Recognizer | None = None

    def __call__(self, audio: np.ndarray, sample_rate: int) -> str:
        if self._transcribe is None:
            from higgs_cli.engine.asr import load_transcriber

            self._transcribe = load_transcriber(self.source, device=self.device)
        return self._transcribe(audio, sample_rate)


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
