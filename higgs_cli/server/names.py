"""The names OpenAI clients send, so higgs serve is a drop-in: model names and stock voice names.

Integrations hard-code `model="tts-1"` and `voice="alloy"`. Every model name
below means the one model this server serves. A stock voice name means, in
order: the library voice `higgs serve --voice-alias alloy=NAME` (or a voices
file) points it at; a library voice of that very name; else a built-in
described voice: a speaker description in the prompt, no reference audio
(the model invents a voice that fits it, so the same name sounds alike, not
identical, across texts; clone a library voice for a fixed one).
"""

from __future__ import annotations

from pathlib import Path

from higgs_cli.errors import UsageError

MODEL_ALIASES = ("higgs", "tts-1", "tts-1-hd", "gpt-4o-mini-tts", "higgs-audio-v2")

STOCK_VOICES = {  # OpenAI's stock names -> distinct built-in speaker descriptions
    "alloy": "neutral voice, warm and even, mid pitch, clear studio recording",
    "ash": "masculine voice, relaxed and slightly husky, low pitch, clear studio recording",
    "ballad": "masculine voice, soft and expressive, gentle storyteller, clear studio recording",
    "coral": "feminine voice, bright and friendly, upbeat pace, clear studio recording",
    "echo": "masculine voice, calm and resonant, measured pace, clear studio recording",
    "fable": "masculine voice, lively narrator, British accent, clear studio recording",
    "onyx": "masculine voice, deep and authoritative, slow pace, clear studio recording",
    "nova": "feminine voice, young and energetic, bright pitch, clear studio recording",
    "sage": "feminine voice, calm and thoughtful, low pitch, clear studio recording",
    "shimmer": "feminine voice, soft and airy, gentle pace, clear studio recording",
    "verse": "masculine voice, versatile and expressive, mid pitch, clear studio recording",
}


def served_models(session) -> list[str]:
    """Every model id this server answers to: the aliases, then the checkpoint's names."""
    names = [*MODEL_ALIASES, session.name, session.model_id, session.name.rstrip("/").rsplit("/", 1)[-1]]
    return list(dict.fromkeys(str(name) for name in names if name))


def parse_aliases(pairs: list[str], voices_file: Path | None = None) -> dict[str, str]:
    """`--voice-alias alloy=belinda` (repeatable) and a voices file of `alloy = belinda` lines
    (`#` comments) -> {stock name: library voice}; UsageError names the bad entry."""
    entries = [(f"--voice-alias {pair}", pair) for pair in pairs]
    if voices_file is not None:
        try:
            text = voices_file.read_text(encoding="utf-8") if voices_file.is_file() else None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read the voices file {voices_file}: {error}") from None
        if text is None or len(text) > 64 * 1024:
            raise UsageError(f"the voices file {voices_file} is not a text file of at most 64 KiB")
        entries += [(f"{voices_file}:{n}", line.split("#", 1)[0]) for n, line in enumerate(text.splitlines(), 1)
                    if line.split("#", 1)[0].strip()]
    aliases: dict[str, str] = {}
    for where, entry in entries:
        name, sep, voice = entry.partition("=")
        name, voice = name.strip(), voice.strip()
        if not sep or not name or not voice or len(name) > 100:
            raise UsageError(f"{where}: expected NAME=VOICE (e.g. alloy=belinda)")
        aliases[name] = voice
    return aliases


def check_aliases(aliases: dict[str, str], library=None) -> None:
    """Every alias names a voice in the library (UsageError before any model loads)."""
    if not aliases:
        return
    from higgs_cli.voices.library import VoiceLibrary

    library = library or VoiceLibrary()
    for name, voice in aliases.items():
        try:
            library.get(voice)
        except UsageError as error:
            raise UsageError(f"--voice-alias {name}={voice}: {error.message}",
                             hint="add the voice with `higgs voice add`, or see `higgs voice list`") from None
