"""One voice resolver: every way a voice reaches a prompt ends in `reference_turn`.

A voice comes as a library name (`higgs say --voice alice`, a project speaker's
`voice:`, a `say --input-file` row, a server request's `voice`), or as a
recording with its transcript (`--voice clip.wav --transcript ...`, a project
speaker's `audio:` + `transcript:`, a server request's `references`). Each is
first checked into a `ResolvedVoice` (no model needed), then made into the
reference `Turn` here, with one rule for the transcript: `reference_text`.

That rule is Boson's: its generation example reads a reference's transcript
and only strips it (`f.read().strip()`); the target text alone goes through
its normalization (punctuation, markers, a final period). So a reference
transcript is sent as written, whitespace at its ends removed
(docs/engine.md, "The reference turn").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from higgs_cli.engine.request import Adapter, Turn
from higgs_cli.errors import UsageError

Encoder = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class VoiceChoice:
    """A voice as a user names it: a library voice name, or an audio file with its transcript."""

    name_or_path: str
    transcript: str | None = None


@dataclass(frozen=True)
class ResolvedVoice:
    """A checked voice: its transcript and where its reference audio comes from (one of three)."""

    transcript: str
    audio: np.ndarray | None = None  # a prepared clip (24 kHz mono), encoded with the prompt
    codes: np.ndarray | None = None  # codes already at hand (a project's cached recording)
    library_name: str | None = None  # a library voice: its cached codes, for the session's codec


def reference_text(transcript: str) -> str:
    """A reference transcript as the prompt carries it: as written, its ends stripped (Boson's rule)."""
    return transcript.strip()


def library_voice(name: str, library=None, *, transcript: str | None = None) -> ResolvedVoice:
    """The library voice `name` (UsageError, with a did-you-mean, when there is none); `transcript`
    replaces the one stored with the voice."""
    from higgs_cli.voices.library import VoiceLibrary

    voice = (library or VoiceLibrary()).get(name)
    return ResolvedVoice(transcript or voice.transcript, library_name=voice.name)


def resolve_choice(choice: VoiceChoice, library=None) -> ResolvedVoice:
    """Check a --voice choice (a file that exists, else a library voice name) before any model loads."""
    path = Path(choice.name_or_path).expanduser()
    if path.exists():
        if not choice.transcript or not choice.transcript.strip():
            raise UsageError(f"--voice {path} needs --transcript: the words spoken in that recording",
                             hint="zero-shot cloning pairs the reference audio with its transcript")
        from higgs_cli.voices.reference import prepare_reference

        return ResolvedVoice(choice.transcript, audio=prepare_reference(path))
    if any(sep in choice.name_or_path for sep in "/\\") or "." in choice.name_or_path:
        raise UsageError(f"--voice {choice.name_or_path}: no such file",
                         hint="give an audio file that exists, or the name of a voice in `higgs voice list`")
    return library_voice(choice.name_or_path, library, transcript=choice.transcript)


def reference_turn(voice: ResolvedVoice, *, codec_id: str | None = None, encode: Encoder | None = None,
                   library=None, adapter: bool = True) -> Turn:
    """The reference Turn of a resolved voice: its transcript by `reference_text`, with its audio.

    A library voice takes its codes for `codec_id` from the library's cache, encoding the
    recording with `encode` on a miss (whatever `encode` raises propagates), and carries its
    trained adapter (`higgs voice train`) unless `adapter` is False (`--no-adapter`)."""
    text = reference_text(voice.transcript)
    if voice.library_name is not None:
        if codec_id is None or encode is None:
            raise ValueError("a library voice's reference turn needs the codec id and an encoder")
        from higgs_cli.voices.library import VoiceLibrary

        library = library or VoiceLibrary()
        codes = library.codes(voice.library_name, codec_id, encode)
        return Turn(text, codes=np.asarray(codes),
                    adapter=voice_adapter(library.get(voice.library_name).path) if adapter else None)
    if voice.codes is not None:
        return Turn(text, codes=voice.codes)
    return Turn(text, audio=voice.audio)


def voice_adapter(folder: Path) -> Adapter | None:
    """The trained adapter of the library voice in `folder`, as the engine takes it (None: it has none)."""
    from higgs_cli.voices.adapter import find_adapter

    found = find_adapter(folder)
    return Adapter(str(found.path), found.digest) if found else None
