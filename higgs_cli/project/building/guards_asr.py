"""The optional speech-recognition guard: transcribe a line and flag a high word error rate.

The transcriber (engine/asr.py, a transformers Whisper pipeline) loads at the
first line it checks, once per render, on the render's device (`asr_device`);
the text normalisation, the word error rate and the flag are here, torch-free.
Chinese and Japanese are compared character by character (a character error
rate), other scripts word by word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from higgs_cli.engine.request import SAMPLE_RATE, GenerationResult
from higgs_cli.errors import UsageError
from higgs_cli.project.reading.length import spoken_text

Transcriber = Callable[[np.ndarray, int], str]  # (audio, sample rate) -> text
ELSEWHERE = ("server", "ray")  # describe() kinds of sessions whose model runs outside this process


def asr_device(session: Any, requested: str | None) -> str:
    """The device speech recognition runs on, in this process.

    A session with its model here (a ModelSession, or a LazySession of one): that session's device,
    so `--device cpu` keeps it off the GPU and a CUDA session shares the GPU. A server's or Ray's
    session (its `device` is another process's): `requested`, the user's --device, else the CPU.
    No session, or one that names no device (a test double): `requested`, else the CPU.
    Read at the first line checked, when a lazy session is loaded already."""
    describe = getattr(session, "describe", None) if session is not None else None
    if callable(describe) and describe().get("kind") in ELSEWHERE:
        return requested or "cpu"
    device = getattr(session, "device", None) if session is not None else None
    return str(device) if device is not None else requested or "cpu"


def words_of(text: str) -> list[str]:
    """The words of `text` as speech recognition is compared: lower case, markup and punctuation
    dropped, each Chinese or Japanese character a word of its own."""
    text = spoken_text(unicodedata.normalize("NFKC", text)).lower()
    out: list[str] = []
    for token in text.split():
        word = ""
        for ch in token:
            category = unicodedata.category(ch)
            if category[0] in "PS":  # punctuation and symbols separate nothing in speech
                continue
            if unicodedata.east_asian_width(ch) in "WF" and category[0] == "L":
                if word:
                    out.append(word)
                    word = ""
                out.append(ch)
            else:
                word += ch
        if word:
            out.append(word)
    return out


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float | None:
    """Edits per reference word (0 is a perfect transcript; it may exceed 1); None for no words."""
    ref = words_of(reference)
    if not ref:
        return None
    return edit_distance(ref, words_of(hypothesis)) / len(ref)


class AsrCheck:
    """`guards.asr_model`'s check. `transcriber` replaces the Whisper pipeline (tests); `session` and
    `device` (the render's session and the user's --device, if any) choose its device (`asr_device`)."""

    def __init__(self, model: str, max_wer: float, *, root: Path | None = None,
                 transcriber: Transcriber | None = None, session: Any = None, device: str | None = None) -> None:
        self.model = model
        self.max_wer = max_wer
        self._transcribe = transcriber
        self.source = self._resolve(model, root) if transcriber is None else model
        self.session = session
        self.device = device
        if device and transcriber is None:  # a device this machine lacks: said now, before any line is made
            from higgs_cli.engine.asr import check_device

            self.device = check_device(device)

    @staticmethod
    def _resolve(model: str, root: Path | None) -> str:
        """A local folder (relative to the project) as it is; anything else must look like a model
        name, which engine/asr.py looks up in the local model cache only."""
        candidate = Path(model).expanduser()
        if not candidate.is_absolute() and root is not None:
            candidate = root / candidate
        if candidate.is_dir():
            return str(candidate.resolve())
        if model.startswith((".", "/", "~")) or "\\" in model or model.count("/") > 1:
            raise UsageError(f"guards.asr_model: {candidate} is not a folder",
                             hint="give a local Whisper checkpoint folder (relative to the project), "
                                  "or remove guards.asr_model to turn speech recognition off")
        return model

    def transcribe(self, audio: np.ndarray) -> str:
        if self._transcribe is None:  # the first line checked: load the model now, once
            from higgs_cli.engine.asr import load_transcriber

            self._transcribe = load_transcriber(self.source, device=asr_device(self.session, self.device))
        return self._transcribe(audio, SAMPLE_RATE)

    def check(self, result: GenerationResult, text: str) -> list[dict]:
        """A flag when the transcript's word error rate against `text` is above max_wer."""
        if not words_of(text) or len(result.audio) == 0:
            return []
        heard = self.transcribe(np.asarray(result.audio, dtype=np.float32))
        wer = word_error_rate(text, heard)
        if wer is None or wer <= self.max_wer:
            return []
        shown = heard if len(heard) <= 80 else heard[:77] + "..."
        return [{"code": "asr", "message": f"speech recognition heard {shown!r}: word error rate {wer:.2f} "
                                           f"(over guards.max_wer {self.max_wer:g} is flagged)"}]
