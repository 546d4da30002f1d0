"""What a caller asks the engine for, and what it gets back. No torch here."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from higgs_cli.errors import UsageError

SAMPLE_RATE = 24_000
"""Samples a second of the audio the codec takes and gives (the model's only rate)."""
FRAME_RATE = 25
"""Codec frames a second of audio (each frame: one code per codebook)."""
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAME_RATE
NUM_CODEBOOKS = 8
CHUNK_FRAMES = FRAME_RATE
"""Frames a streamed chunk of audio holds by default (about one second)."""


def seconds_to_frames(seconds: float) -> int:
    """The frames of `seconds` of audio (at least one): the one conversion of a length in seconds."""
    return max(1, round(seconds * FRAME_RATE))

RANDOM_WEIGHTS_NOTE = "random-init model: the audio is noise, not speech"
"""The one wording of the warning shown wherever audio from a random checkpoint reaches a user."""


@dataclass(frozen=True)
class Range:
    """The allowed values of one numeric setting, shared by the CLI, projects and the engine."""

    low: float | None
    high: float | None
    integer: bool = False
    low_open: bool = False
    nullable: bool = False

    def allows(self, value: float | None) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, float) and not math.isfinite(value):  # NaN, ±inf (1e400): never a setting
            return False
        if self.integer and (isinstance(value, bool) or int(value) != value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        if self.low is not None and self.high is not None:
            low = f"above {_fmt(self.low)}" if self.low_open else f"from {_fmt(self.low)}"
            text = f"{kind} {low} to {_fmt(self.high)}"
        elif self.low is not None:
            text = f"{kind} {'>' if self.low_open else '>='} {_fmt(self.low)}"
        else:
            text = kind
        return f"{text}, or null" if self.nullable else text


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


SAMPLING_RANGES: dict[str, Range] = {
    "temperature": Range(0, 2),
    "top_k": Range(1, None, integer=True, nullable=True),
    "top_p": Range(0, 1, low_open=True),
    "ras_window": Range(0, 100, integer=True),
    "ras_max_repeat": Range(1, 100, integer=True),
    "seed": Range(0, 2**32 - 1, integer=True),
    "max_seconds": Range(0, 600, low_open=True),
    "pause": Range(0, 30),
}
"""Every sampling and length setting's range: `higgs say` options, project keys and requests."""

DEFAULT_SEED = 0
DEFAULT_MAX_SECONDS = 30.0
DEFAULT_PAUSE = 0.4


@dataclass(frozen=True)
class Sampling:
    """Sampling settings. temperature 0 is greedy; ras_window 0 turns RAS off."""

    temperature: float = 0.7
    top_k: int | None = None
    top_p: float = 0.95
    ras_window: int = 7
    ras_max_repeat: int = 2

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p,
                "ras_window": self.ras_window, "ras_max_repeat": self.ras_max_repeat}


GREEDY = Sampling(temperature=0.0, top_k=None, top_p=1.0, ras_window=0)


@dataclass(frozen=True)
class Adapter:
    """A trained LoRA adapter a request is spoken with: its folder (peft's layout) and its digest, which
    names it in cache keys and in the engine's groups (`higgs_cli/voices/adapter.py`)."""

    path: str
    digest: str


@dataclass(frozen=True)
class Turn:
    """One earlier exchange in the prompt: a text and the audio spoken for it.

    A voice reference is a Turn (its transcript and recording); long narration
    passes the previous chunks as Turns so the voice stays the same. Give
    `codes` (codebooks x frames, int) when known, else `audio` (24 kHz mono
    float32) and the engine encodes it.
    """

    text: str
    codes: np.ndarray | None = None
    audio: np.ndarray | None = None
    adapter: Adapter | None = None  # a trained voice's LoRA adapter: the line is spoken with it applied

    def __post_init__(self) -> None:
        if self.codes is None and self.audio is None:
            raise ValueError("a Turn needs codes or audio")


@dataclass
class GenerationRequest:
    """One line to speak. `text` is sent as written: normalize it first (engine.text)."""

    text: str
    history: tuple[Turn, ...] = ()
    scene: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = 0
    max_frames: int = 750
    system: str = "Generate audio following instruction."

    @property
    def adapter(self) -> Adapter | None:
        """The trained adapter this line is spoken with: its voice's (the reference turn that carries
        one); UsageError when its turns carry two different ones."""
        found = {turn.adapter for turn in self.history if turn.adapter is not None}
        if len(found) > 1:
            raise UsageError("a line cannot be spoken with two trained voices' adapters at once",
                             hint="give one of the voices --no-adapter")
        return next(iter(found), None)


@dataclass
class GenerationResult:
    """The codes (codebooks x frames, delay pattern reverted) and their decoded audio."""

    codes: np.ndarray
    audio: np.ndarray
    finished: bool  # True when the model ended the stream, False when max_frames cut it

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])

    @property
    def seconds(self) -> float:
        return self.frames / FRAME_RATE
