"""What a caller asks the engine for, and what it gets back. No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 24_000
FRAME_RATE = 25
NUM_CODEBOOKS = 8


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
