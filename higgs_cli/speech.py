"""One line of speech: what `higgs say` does, as a library call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from higgs_cli.engine.request import FRAME_RATE, GenerationRequest, GenerationResult, Sampling, Turn
from higgs_cli.engine.text import MAX_TEXT_CHARS, check_text, normalize_text
from higgs_cli.errors import UsageError


@dataclass(frozen=True)
class VoiceChoice:
    """A reference voice: a library voice name, or an audio file with its transcript."""

    name_or_path: str
    transcript: str | None = None


def check_speakable(text: str) -> None:
    """UsageError for text with nothing to say once control and invisible characters are dropped."""
    if text.strip() and not normalize_text(text):
        raise UsageError("the text has nothing to speak once control and invisible characters are removed",
                         hint="give words to speak")


def check_sampling(temperature: float, top_k: int | None, top_p: float, max_seconds: float) -> None:
    if not 0.0 <= temperature <= 2.0:
        raise UsageError(f"--temperature must be between 0 and 2, got {temperature}")
    if top_k is not None and top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise UsageError(f"--top-p must be in (0, 1], got {top_p}")
    if not 0.0 < max_seconds <= 600.0:
        raise UsageError(f"--max-seconds must be in (0, 600], got {max_seconds}")


@dataclass(frozen=True)
class ResolvedVoice:
    """A checked voice choice: a reference file (prepared audio) or a library voice."""

    transcript: str
    audio: object = None  # np.ndarray for a file reference
    library_name: str | None = None


def resolve_voice(choice: VoiceChoice, library=None) -> ResolvedVoice:
    """Check a --voice choice before any model is loaded."""
    path = Path(choice.name_or_path).expanduser()
    if path.exists():
        if not choice.transcript or not choice.transcript.strip():
            raise UsageError(f"--voice {path} needs --transcript: the words spoken in that recording",
                             hint="zero-shot cloning pairs the reference audio with its transcript")
        from higgs_cli.voices.library import prepare_reference

        return ResolvedVoice(normalize_text(choice.transcript), audio=prepare_reference(path))
    if any(sep in choice.name_or_path for sep in "/\\") or "." in choice.name_or_path:
        raise UsageError(f"--voice {choice.name_or_path}: no such file",
                         hint="give an audio file that exists, or the name of a voice in `higgs voice list`")
    from higgs_cli.voices.library import VoiceLibrary

    voice = (library or VoiceLibrary()).get(choice.name_or_path)
    return ResolvedVoice(normalize_text(choice.transcript or voice.transcript), library_name=voice.name)


def voice_turn(voice: ResolvedVoice, session, library=None) -> Turn:
    """The reference Turn for a resolved voice; library voices use their cached codes."""
    if voice.library_name is None:
        return Turn(voice.transcript, audio=voice.audio)
    from higgs_cli.voices.library import VoiceLibrary

    codes = (library or VoiceLibrary()).codes(voice.library_name, session.codec_id, session.encode_audio)
    return Turn(voice.transcript, codes=codes)


def build_request(text: str, *, voice: Turn | None = None, scene: str | None = None,
                  sampling: Sampling = Sampling(), seed: int = 0, max_seconds: float = 30.0) -> GenerationRequest:
    check_text(text, max_chars=MAX_TEXT_CHARS)
    check_speakable(text)
    check_sampling(sampling.temperature, sampling.top_k, sampling.top_p, max_seconds)
    return GenerationRequest(text=normalize_text(text), history=(voice,) if voice else (),
                             scene=scene.strip() if scene and scene.strip() else None, sampling=sampling,
                             seed=seed, max_frames=max(1, round(max_seconds * FRAME_RATE)))


def say(session, request: GenerationRequest, *, progress=None) -> GenerationResult:
    """Generate one request on a loaded session."""
    [result] = session.generate([request], batch_size=1, progress=progress)
    return result
