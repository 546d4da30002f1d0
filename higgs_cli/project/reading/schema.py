"""The project format's rules: which keys go where, the limits, and the rule of each value.

Sampling and length settings take their ranges from the engine
(`higgs_cli.engine.request.SAMPLING_RANGES`), the one source that `higgs say`
and the engine check too. The format is documented in docs/project-format.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from higgs_cli.audio.io import MP3_BITRATES_KBPS
from higgs_cli.audio.subtitles import LABELS
from higgs_cli.engine.request import SAMPLING_RANGES, Range

FORMAT_VERSION = 1
MAX_NOTE_CHARS = 2000  # scene, description, transcript
MAX_TITLE_CHARS = 200
MAX_NAME_CHARS = 64  # speaker names and section ids

TOP_KEYS = ("version", "title", "artist", "album", "author", "narrator", "model", "scene", "defaults", "output",
            "guards", "lexicon", "lexicon_file", "cache", "speakers", "script")
SPEAKER_KEYS = ("voice", "audio", "transcript", "transcript_file", "description", "name")
LINE_OVERRIDES = ("seed", "temperature", "ras_window", "ras_max_repeat", "pause", "retries")
"""Settings a line may set for itself; a section may set them for its lines."""
LINE_KEYS = ("id", "speaker", "text", *LINE_OVERRIDES, "scene", "direction")
SECTION_KEYS = ("id", "title", "task", "scene", "speaker", "text", "lines", *LINE_OVERRIDES)

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab and line breaks are fine
SECTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SPEAKER_NAME = re.compile(r"\w[\w.-]*")
SECTION_ID_RULE = (f"letters, digits, '_', '.', '-', starting with a letter or digit, "
                   f"at most {MAX_NAME_CHARS} characters")
SPEAKER_NAME_RULE = f"letters, digits, '_', '.', '-', at most {MAX_NAME_CHARS} characters"


@dataclass(frozen=True)
class Choice:
    """A text setting with a fixed set of values."""

    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)


@dataclass(frozen=True)
class OneOf(Range):
    """A numeric setting with a fixed set of values (e.g. MP3 bitrates)."""

    options: tuple[float, ...] = ()

    def allows(self, value: float | None) -> bool:
        return super().allows(value) and value in self.options

    def describe(self) -> str:
        return "one of " + ", ".join(f"{o:g}" for o in self.options)


class Bool:
    """A true/false setting."""

    @staticmethod
    def describe() -> str:
        return "true or false"


@dataclass(frozen=True)
class Text:
    """A free text setting (e.g. a path inside the project, or a model name); None allowed."""

    max_chars: int = 1000

    def describe(self) -> str:
        return f"text of at most {self.max_chars} characters"


Rule = Range | Choice | Bool | Text

RETRIES = Range(0, 10, integer=True)
"""How many times a line the quality guards flag is generated again with another seed."""

SAMPLING_RULES: dict[str, Range] = {**SAMPLING_RANGES, "retries": RETRIES}
"""`defaults:` keys (and the line overrides): the engine's ranges, plus the guards' retries."""

GUARD_RULES: dict[str, Rule] = {
    "enabled": Bool(),
    "asr_model": Text(),  # a local Whisper checkpoint (folder) or model name; None: no speech recognition
    "max_wer": Range(0, 1),
}
"""`guards:` keys: the quality checks run on every generated line (see project/building/guards.py)."""

OUTPUT_RULES: dict[str, Rule] = {
    "format": Choice(("wav", "flac", "mp3", "m4b")),
    "loudness": Range(-70, 0),
    "peak": Range(-20, 0),
    "crossfade_ms": Range(0, 1000),
    "trim_silence": Bool(),
    "stems": Bool(),
    "subtitles": Bool(),
    "max_hours": Range(0, 24, low_open=True),
    "subtitle_labels": Choice(LABELS),
    "bitrate": OneOf(min(MP3_BITRATES_KBPS), max(MP3_BITRATES_KBPS), integer=True, options=MP3_BITRATES_KBPS),
    "split": Choice(("none", "section")),
    "sample_rate": OneOf(8000, 48000, integer=True, nullable=True,
                         options=(8000, 16000, 22050, 24000, 32000, 44100, 48000)),
    "profile": Choice(("none", "acx", "podcast", "broadcast")),
    "cover": Text(),  # an image inside the project folder, embedded in m4b/mp3 masters
    "highpass": Range(0, 200),  # Hz; 0 removes only DC (audio/cleanup.py)
}
