"""What a task sees of a project: the in-memory form of a validated `project.yaml`. No I/O here.

The project loader (`higgs_cli.project.reading.load`) builds these from YAML, with a
file:line:column for every value; task plugins read them to plan sections
into engine requests. They live beside the plugin contract, below the project
layer, so that a plugin never needs to import `higgs_cli.project`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from higgs_cli.engine.request import DEFAULT_MAX_SECONDS, DEFAULT_PAUSE, DEFAULT_SEED, Sampling


@dataclass(frozen=True)
class Location:
    """Where a value stands in its file, 1-based, for error messages."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SamplingDefaults:
    """Project-wide generation settings (`defaults:`); sections and lines may override the
    temperature and RAS settings, the seed, pause, scene and retries."""

    sampling: Sampling = field(default_factory=Sampling)  # the engine's defaults are the project's
    seed: int = DEFAULT_SEED
    max_seconds: float = DEFAULT_MAX_SECONDS
    pause: float = DEFAULT_PAUSE
    retries: int = 2  # a line the quality guards flag is generated again up to this many times

    @classmethod
    def of(cls, **keys: Any) -> SamplingDefaults:
        """From the flat keys of a project file's `defaults:` (temperature, top_k, ..., seed, retries)."""
        names = {f.name for f in fields(Sampling)}
        return cls(Sampling(**{k: v for k, v in keys.items() if k in names}),
                   **{k: v for k, v in keys.items() if k not in names})


@dataclass(frozen=True)
class GuardSettings:
    """`guards:`: the quality checks run on every generated line (project/building/guards.py)."""

    enabled: bool = True
    asr_model: str | None = None  # a Whisper checkpoint for the speech-recognition check; None: off
    max_wer: float = 0.5  # word error rate above which the speech-recognition check flags a line


@dataclass(frozen=True)
class OutputSettings:
    format: str = "wav"  # wav | flac | mp3
    loudness: float = -16.0  # integrated LUFS target
    peak: float = -1.0  # dBTP ceiling of the limiter (true peak, between samples too)
    crossfade_ms: float = 10.0
    trim_silence: bool = True
    stems: bool = True
    subtitles: bool = True
    max_hours: float = 4.0  # a render estimated longer than this is refused before it starts
    # The three below are the audio layer's defaults (audio.subtitles.LABELS[0], audio.io.DEFAULT_MP3_KBPS,
    # audio.cleanup.DEFAULT_HIGHPASS_HZ), written out so the task contract loads no audio I/O;
    # tests/architecture/test_layers.py keeps them equal.
    subtitle_labels: str = "auto"  # speaker labels on cues: auto (2+ speakers) | always | never
    bitrate: int = 192  # kbps of an mp3 or m4b master (constant bitrate); other formats ignore it
    highpass: float = 70.0  # Hz: the master's high-pass under speech (0: only DC is removed); not for bgm lines
    split: str = "none"  # none | section: one master file per section as well
    sample_rate: int | None = None  # None: the format's default
    profile: str = "none"  # none | acx | podcast | broadcast: master to that delivery profile
    cover: str | None = None  # an image inside the project folder, embedded in m4b/mp3 masters


@dataclass(frozen=True)
class Speaker:
    """A speaker maps to exactly one voice source: a library voice, a project-local
    recording with its transcript, or a text description alone."""

    name: str
    voice: str | None = None  # voice library name
    audio: Path | None = None  # project-local reference recording (resolved, inside the project)
    transcript: str | None = None  # the recording's words (read from `transcript_file:` when given there)
    description: str | None = None  # free text, e.g. "warm female voice, British accent"
    location: Location | None = None
    transcript_file: Path | None = None  # project-local file the transcript was read from (resolved)
    display_name: str | None = None  # `name:`, as subtitles and the review page show the speaker ("Old Man")


@dataclass(frozen=True)
class LexiconEntry:
    """One `lexicon:` entry's respelling; `case`: match the word only as written (else any case)."""

    say: str
    case: bool = False
    location: Location | None = None


@dataclass(frozen=True)
class Line:
    """One spoken line. None means "use the section's or project's default"."""

    speaker: str | None
    text: str
    seed: int | None = None
    temperature: float | None = None
    pause: float | None = None  # seconds of silence after this line
    scene: str | None = None
    location: Location | None = None
    ras_window: int | None = None  # 0 turns repetition-aware sampling off for this line
    ras_max_repeat: int | None = None
    retries: int | None = None  # quality-guard retries for this line
    id: str | None = None  # the line's own reference (`higgs project ... REF`), unique in the project
    direction: str | None = None  # how to say it ("stern"): joins the scene instead of replacing it


@dataclass(frozen=True)
class Section:
    """A part of the script handled by one task plugin.

    `lines` holds the section's lines (a single `text:` becomes one line);
    `fields` holds the remaining task-specific keys (e.g. bgm's `music`) with
    `field_locations` for error messages.
    """

    id: str
    task: str
    lines: tuple[Line, ...]
    fields: dict[str, Any] = field(default_factory=dict)
    field_locations: dict[str, Location] = field(default_factory=dict)
    scene: str | None = None
    location: Location | None = None
    speaker: str | None = None  # the section's `speaker:`; already applied to lines that name none
    title: str | None = None  # shown as its chapter's title in m4b/mp3 masters and section files (default: the id)


@dataclass(frozen=True)
class Project:
    root: Path  # the project folder
    file: Path  # the project.yaml
    title: str
    model: str | None
    scene: str | None
    defaults: SamplingDefaults
    output: OutputSettings
    speakers: dict[str, Speaker]
    sections: tuple[Section, ...]
    artist: str | None = None  # written into the master's tags with the title
    album: str | None = None
    author: str | None = None
    narrator: str | None = None
    guards: GuardSettings = field(default_factory=GuardSettings)
    lexicon: dict[str, LexiconEntry] = field(default_factory=dict)  # word -> respelling (reading/lexicon.py)
    cache: str | None = None  # a shared render cache URL (e.g. s3://bucket/prefix); None: the project's own
