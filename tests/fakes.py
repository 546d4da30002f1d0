"""Test doubles without torch: a FakeSession with the engine's interface, and
small projects built in Python."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import CHUNK_FRAMES, NUM_CODEBOOKS, SAMPLE_RATE, GenerationRequest, GenerationResult
from higgs_cli.plugins.script import GuardSettings, Line, OutputSettings, Project, SamplingDefaults, Section, Speaker

HOP = SAMPLE_RATE // 25  # samples per frame


class FakeInterrupt(RuntimeError):
    """What a FakeSession raises when told to fail part-way."""


def _digest(*parts) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(parts, default=str).encode()).digest()[:8], "little")


def _array_id(array: np.ndarray | None) -> str | None:
    return None if array is None else hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class FakeSession:
    """Deterministic stand-in for ModelSession (an `engine.api.Session`): the audio is a function
    of the whole request.

    `generate_calls` counts calls, `requests` keeps every request generated;
    `fail_after=N` raises FakeInterrupt before the (N+1)-th request is produced,
    losing the rest of that batch as a real interruption would.
    """

    model_id = "fake-model-sha-1"
    codec_id = "fake-codec-sha-1"
    name = "fake/model"

    def __init__(self, *, fail_after: int | None = None, is_random: bool = False) -> None:
        self.fail_after = fail_after
        self.is_random = is_random
        self.generate_calls = 0
        self.encode_calls = 0
        self.requests: list[GenerationRequest] = []
        self.calls: list[list[str]] = []  # the texts of each generate() call
        self.batch_sizes: list[int] = []

    def request_id(self, request: GenerationRequest) -> int:
        history = [(t.text, _array_id(t.codes), _array_id(t.audio)) for t in request.history]
        return _digest(request.text, request.scene, request.system, request.seed, request.max_frames,
                       request.sampling.to_dict(), history)

    def generate(self, requests, *, batch_size=DEFAULT_BATCH_SIZE, progress=None):
        self.generate_calls += 1
        self.calls.append([r.text for r in requests])
        self.batch_sizes.append(batch_size)
        results = []
        for request in requests:
            if self.fail_after is not None and len(self.requests) >= self.fail_after:
                raise FakeInterrupt(f"interrupted after {len(self.requests)} lines")
            self.requests.append(request)
            h = self.request_id(request)
            frames = min(request.max_frames, 10 + h % 15)
            codes = np.random.default_rng(h).integers(0, 1024, size=(NUM_CODEBOOKS, frames))
            finished = frames < request.max_frames
            results.append(GenerationResult(codes=codes, audio=self.decode(codes), finished=finished))
        if progress is not None:
            for step in range(max(r.frames for r in results)):
                progress(sum(r.frames > step for r in results))
        return results

    def stream(self, request: GenerationRequest, *, chunk_frames: int = CHUNK_FRAMES):
        """The audio of generate(), in chunks of `chunk_frames` frames."""
        [result] = self.generate([request], batch_size=1)
        step = chunk_frames * HOP
        for start in range(0, len(result.audio), step):
            yield result.audio[start:start + step]

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        self.encode_calls += 1
        h = _digest(_array_id(np.asarray(audio, dtype=np.float32)))
        frames = max(1, len(audio) // HOP)
        return np.random.default_rng(h).integers(0, 1024, size=(NUM_CODEBOOKS, frames))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """A tone per frame (pitch from the first codebook) between two frames of silence."""
        t = np.arange(HOP) / SAMPLE_RATE
        tones = [0.3 * np.sin(2 * np.pi * (150 + int(c)) * t) for c in codes[0]]
        silence = np.zeros(2 * HOP)
        return np.concatenate([silence, *tones, silence]).astype(np.float32)


def write_voice(path: Path, seconds: float = 1.0, freq: float = 220.0) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SAMPLE_RATE)
    return path


def make_project(root: Path, sections: list[Section], speakers: dict[str, Speaker] | None = None, *,
                 title: str = "Test Show", scene: str | None = None, guards: GuardSettings | None = None,
                 **output) -> Project:
    """A Project as load_project would build it, without YAML. The quality guards are off unless
    `guards` is given: a FakeSession's tones are not speech-length, and these tests are of the pipeline."""
    root.mkdir(parents=True, exist_ok=True)
    if speakers is None:
        speakers = {
            "alice": Speaker("alice", audio=write_voice(root / "voices" / "alice.wav"),
                             transcript="Hello, I am Alice."),
            "bob": Speaker("bob", description="deep male voice, slow"),
        }
    return Project(root=root, file=root / "project.yaml", title=title, model=None, scene=scene,
                   defaults=SamplingDefaults(), output=OutputSettings(**output), speakers=speakers,
                   sections=tuple(sections), guards=guards or GuardSettings(enabled=False))


def section(id: str, task: str, *lines: tuple[str | None, str], scene: str | None = None,
            speaker: str | None = None, **fields) -> Section:
    """A Section as the loader builds it: the section's speaker applied to lines that name none."""
    return Section(id=id, task=task, lines=tuple(Line(speaker=s or speaker, text=t) for s, t in lines),
                   fields=fields, scene=scene, speaker=speaker)
