"""Synthetic training data: sine bursts between silences, written with soundfile, and a FakeSession
whose codes are a function of the audio (tests/fakes.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from higgs_cli.engine.request import SAMPLE_RATE


def tone(seconds: float, *, freq: float = 220.0, amp: float = 0.3, rate: int = SAMPLE_RATE,
         lead: float = 0.2, tail: float = 0.2) -> np.ndarray:
    """`seconds` of a sine at `amp` between `lead` and `tail` seconds of silence, at `rate`."""
    t = np.arange(int(seconds * rate)) / rate
    body = amp * np.sin(2 * np.pi * freq * t)
    return np.concatenate([np.zeros(int(lead * rate)), body, np.zeros(int(tail * rate))]).astype(np.float32)


def bursts(count: int, *, seconds: float = 2.0, pause: float = 0.6) -> np.ndarray:
    """A long recording: `count` tone bursts of `seconds` (each its own pitch), `pause` apart."""
    parts = [tone(seconds, freq=200.0 + 30 * i, lead=pause / 2, tail=pause / 2) for i in range(count)]
    return np.concatenate(parts)


def write(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE, text: str | None = None) -> Path:
    """`audio` as a WAV at `rate`; with `text`, the same-named .txt beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate)
    if text is not None:
        path.with_suffix(".txt").write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def session():
    from fakes import FakeSession

    return FakeSession()


@pytest.fixture
def clips_dir(tmp_path) -> Path:
    """Four good clips (2-3 s) with transcripts."""
    folder = tmp_path / "data"
    for i in range(4):
        write(folder / f"clip{i}.wav", tone(2.0 + i * 0.3, freq=200 + 40 * i), text=f"  Clip number {i}.\n  Done. ")
    return folder
