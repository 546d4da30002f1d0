"""One line of speech: what `higgs say` does, as library calls.

    job = SayJob("Hello there.", Path("hello.wav"))
    prepared = prepare(job)              # every check that needs no model
    result = run(prepared, session)      # generate, write the file, report

`prepare` comes first so that a typo costs no model load; `run` takes any
`engine.api.Session`.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from higgs_cli.engine.api import Session
from higgs_cli.engine.request import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_SEED,
    RANDOM_WEIGHTS_NOTE,
    SAMPLE_RATE,
    SAMPLING_RANGES,
    GenerationRequest,
    GenerationResult,
    Sampling,
    Turn,
    seconds_to_frames,
)
from higgs_cli.engine.text import MAX_TEXT_CHARS, check_text, normalize_text, nothing_to_speak
from higgs_cli.errors import UsageError
from higgs_cli.untrusted import check_utf8
from higgs_cli.voices.reference_turn import ResolvedVoice, VoiceChoice, reference_turn, resolve_choice

STDIN = STDOUT = "-"
STREAMABLE = ("wav", "flac", "ogg")  # formats written while the audio is generated


def read_text(text: str, stdin: BinaryIO | None = None) -> str:
    """TEXT as given, or, when it is "-", the UTF-8 text read from stdin."""
    if text != STDIN:
        return text
    stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", sys.stdin)
    data = stream.read()
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as error:
        raise UsageError(f"the text on stdin is not UTF-8 (byte {error.start} cannot be read)",
                         hint="convert it first, e.g. `iconv -t UTF-8 file.txt | higgs say -`") from None
    if not text.strip():
        raise UsageError("TEXT is - but stdin holds no text", hint='pipe words in: echo "Hello" | higgs say -')
    return text


def check_speakable(text: str) -> None:
    """UsageError for text with nothing to say once control and invisible characters are dropped."""
    if text.strip() and (problem := nothing_to_speak(text)):
        raise UsageError(problem, hint="give words to speak")


def check_sampling(sampling: Sampling, *, seed: int | None = None, max_seconds: float | None = None) -> None:
    """UsageError, naming the flag, for any setting outside its range in `SAMPLING_RANGES`."""
    values = {**sampling.to_dict(), "seed": seed, "max_seconds": max_seconds}
    for key, value in values.items():
        rule = SAMPLING_RANGES[key]
        if (value is not None or key in sampling.to_dict()) and not rule.allows(value):
            raise UsageError(f"--{key.replace('_', '-')} must be {rule.describe()}, got {value}")


def voice_turn(voice: ResolvedVoice, session: Session, library=None, *, adapter: bool = True) -> Turn:
    """The reference Turn of a resolved voice on `session` (library voices use their cached codes, and
    their trained adapter unless `adapter` is False)."""
    return reference_turn(voice, codec_id=session.codec_id, encode=session.encode_audio, library=library,
                          adapter=adapter)


def build_request(text: str, *, voice: Turn | None = None, scene: str | None = None,
                  sampling: Sampling = Sampling(), seed: int = DEFAULT_SEED,
                  max_seconds: float = DEFAULT_MAX_SECONDS) -> GenerationRequest:
    check_text(text, max_chars=MAX_TEXT_CHARS)
    check_speakable(text)
    check_sampling(sampling, seed=seed, max_seconds=max_seconds)
    return GenerationRequest(text=normalize_text(text), history=(voice,) if voice else (),
                             scene=scene.strip() if scene and scene.strip() else None, sampling=sampling,
                             seed=seed, max_frames=seconds_to_frames(max_seconds))


def say(session: Session, request: GenerationRequest, *, progress=None) -> GenerationResult:
    """Generate one request on a loaded session."""
    [result] = session.generate([request], batch_size=1, progress=progress)
    return result


# --- the whole `say`: checks, generation, output ---------------------------

@dataclass(frozen=True)
class SayJob:
    """What `higgs say` was asked for. `output` "-" means a WAV on stdout."""

    text: str
    output: Path | str
    voice: VoiceChoice | None = None
    scene: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = DEFAULT_SEED
    max_seconds: float = DEFAULT_MAX_SECONDS
    stream: bool = False
    no_adapter: bool = False  # a trained library voice without its adapter (A/B listening)

    @property
    def to_stdout(self) -> bool:
        return str(self.output) == STDOUT

    @property
    def max_frames(self) -> int:
        return seconds_to_frames(self.max_seconds)


@dataclass(frozen=True)
class PreparedSay:
    """A job whose every model-free check passed, with its voice resolved."""

    job: SayJob
    voice: ResolvedVoice | None


def check_output(job: SayJob) -> None:
    """UsageError unless the output can be written as asked; creates nothing."""
    if job.to_stdout:
        return
    from higgs_cli.audio.io import can_write, supported_output_formats
    from higgs_cli.fsutil import check_writable

    ext = Path(job.output).suffix.lower().lstrip(".")
    if not can_write(ext) or (job.stream and ext not in STREAMABLE):
        formats = [e for e in supported_output_formats() if e in STREAMABLE] if job.stream else \
            supported_output_formats()
        why = "--stream cannot write that format" if job.stream and ext in supported_output_formats() else (
            "unsupported extension")
        raise UsageError(f"cannot write {job.output}: {why}", hint="use one of: " + ", ".join(f".{e}" for e in formats))
    check_writable(job.output)


def prepare(job: SayJob, library=None) -> PreparedSay:
    """Every check that needs no model, in the order a user fixes them; resolves --voice."""
    check_output(job)
    if job.voice is not None and not job.voice.name_or_path:
        raise UsageError("--transcript goes with --voice AUDIO")
    check_sampling(job.sampling, seed=job.seed, max_seconds=job.max_seconds)
    check_text(job.text, max_chars=MAX_TEXT_CHARS)
    check_speakable(job.text)
    check_utf8(job.scene or "", "--scene")
    if job.voice is not None:
        check_utf8(job.voice.transcript or "", "--transcript")
    return PreparedSay(job, resolve_choice(job.voice, library) if job.voice else None)


@dataclass(frozen=True)
class SayResult:
    """What `say` produced. Streamed results know when audio first came, not the frame count."""

    output: str
    seconds: float
    generation_seconds: float
    model: str
    random_weights: bool
    seed: int
    frames: int | None = None
    finished: bool | None = None
    streamed: bool = False
    first_audio_seconds: float | None = None

    @property
    def frames_per_second(self) -> float | None:
        if self.frames is None or self.generation_seconds <= 0:
            return None
        return round(self.frames / self.generation_seconds, 1)

    def to_dict(self) -> dict:
        data: dict = {"output": self.output, "seconds": self.seconds}
        if self.streamed:
            data.update(streamed=True, first_audio_seconds=self.first_audio_seconds)
        else:
            data.update(frames=self.frames, finished=self.finished, frames_per_second=self.frames_per_second)
        data.update(generation_seconds=self.generation_seconds, model=self.model,
                    random_weights=self.random_weights, seed=self.seed)
        if self.random_weights:
            data["warning"] = RANDOM_WEIGHTS_NOTE
        return data

    def summary(self, max_seconds: float) -> str:
        """One line for people; parts that are not known are left out, never shown as None."""
        where = "streamed" if self.output == STDOUT else f"wrote {self.output}:"
        cut = "" if self.finished in (True, None) else f" (stopped at --max-seconds {max_seconds:g})"
        if self.frames_per_second is not None:
            speed = f", {self.frames_per_second} frames/s"
        elif self.first_audio_seconds is not None:
            speed = f", first audio after {self.first_audio_seconds:.2f} s"
        else:
            speed = ""
        return f"{where} {self.seconds:.2f} s of audio{cut}{speed}"


def _wav_bytes(audio: np.ndarray) -> bytes:
    """A whole 16-bit WAV in memory, with its real length in the header (for `-o -`)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _timed(chunks: Iterable[np.ndarray], first: list[float], started: float) -> Iterator[np.ndarray]:
    for chunk in chunks:
        if not first:
            first.append(time.perf_counter() - started)
        yield chunk


def run(prepared: PreparedSay, session: Session, *, progress: Callable[[int], None] | None = None,
        stdout: BinaryIO | None = None) -> SayResult:
    """Generate the prepared job on `session` and write its audio (the file appears when complete)."""
    job = prepared.job
    turn = voice_turn(prepared.voice, session, adapter=not job.no_adapter) if prepared.voice else None
    request = build_request(job.text, voice=turn, scene=job.scene, sampling=job.sampling, seed=job.seed,
                            max_seconds=job.max_seconds)
    sink = stdout if stdout is not None else sys.stdout.buffer
    facts = {"output": str(job.output), "model": session.name, "random_weights": bool(session.is_random),
             "seed": job.seed}
    started = time.perf_counter()
    if job.stream:
        from higgs_cli.audio.stream import stream_to_file, stream_wav

        first: list[float] = []
        chunks = _timed(session.stream(request), first, started)
        samples = stream_wav(sink, chunks) if job.to_stdout else stream_to_file(job.output, chunks)
        return SayResult(seconds=round(samples / SAMPLE_RATE, 3), streamed=True,
                         first_audio_seconds=round(first[0], 3) if first else None,
                         generation_seconds=round(time.perf_counter() - started, 3), **facts)
    result = say(session, request, progress=progress)
    elapsed = time.perf_counter() - started
    if job.to_stdout:
        sink.write(_wav_bytes(result.audio))
        sink.flush()
    else:
        from higgs_cli.audio.io import write_audio

        write_audio(job.output, result.audio)
    return SayResult(seconds=round(len(result.audio) / SAMPLE_RATE, 3), frames=result.frames,
                     finished=result.finished, generation_seconds=round(elapsed, 3), **facts)
