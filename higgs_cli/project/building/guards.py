"""Quality guards: model-agnostic checks on one generated line, and which of several tries to keep.

Each check looks at a `GenerationResult` (its codes, its audio, whether the
model ended it) and the text it was asked to speak, and returns flags:
`{"code": ..., "message": ...}` with the figures in the message. A render
(generate.py) generates a flagged line again with another seed and keeps the
best try (`rank`). Plugins add checks through the `check_line` hook; the
optional speech-recognition check lives in guards_asr.py. No torch here.
See docs/guards.md.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from higgs_cli.engine.request import FRAME_RATE, SAMPLES_PER_FRAME, GenerationRequest, GenerationResult
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.reading.length import speech_seconds, spoken_text

Flag = dict  # {"code": str, "message": str}

# A line this much shorter or longer than its text predicts is flagged. Speaking rates vary about
# twofold between readers and styles; these leave room for that and catch lines that are clearly
# not the text (a burst, a line that never ends).
SHORT_FACTOR = 0.4  # shorter than 0.4 x the estimate
LONG_FACTOR = 2.5  # longer than 2.5 x the estimate ...
LONG_SLACK = 2.0  # ... plus 2 s (breaths, a pause for a comma, a slow dramatic line)

SILENCE_DB = -45.0  # a 40 ms window quieter than this (RMS, dBFS) is silence
SILENCE_SHARE = 0.6  # a line that is silent for more than 60% of its length is "mostly silence"
SILENCE_MIN_WINDOWS = 5  # lines shorter than 0.2 s are left to the length check

CLIP_LEVEL = 0.999  # a sample at or beyond this is at full scale
CLIP_SHARE = 0.001  # more than 0.1% of the samples at full scale ...
CLIP_MIN_SAMPLES = 24  # ... and at least 1 ms of them

LOOP_MIN_FRAMES = 50  # a repeat covering 2 s (50 frames) or more ...
LOOP_MIN_REPEATS = 3  # ... in which one stretch of frames occurs at least 3 times in a row
LOOP_MAX_PERIOD = 40  # stretches of up to 1.6 s are looked for

SEVERITY = {"unfinished": 3, "loop": 3, "silence": 3, "too_short": 2, "too_long": 2, "asr": 2, "clipping": 1}
"""How bad each flag is, for choosing among tries; a plugin's own codes count 2."""
DEFAULT_SEVERITY = 2


def flag(code: str, message: str) -> Flag:
    return {"code": code, "message": message}


# ---------------------------------------------------------------- the checks


def check_finished(result: GenerationResult, request: GenerationRequest) -> list[Flag]:
    """The model did not end the line: it ran to its length limit (max_frames) and was cut."""
    if result.finished:
        return []
    limit = request.max_frames / FRAME_RATE
    return [flag("unfinished", f"ran to its length limit ({limit:g} s, {request.max_frames} frames) "
                               "without the model ending it")]


def text_amount(text: str) -> str:
    """How much there is to say, per script: "12 words", "20 characters" (Chinese, Japanese), or both."""
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in "WF" and ch.isalnum())
    narrow = "".join(ch if unicodedata.east_asian_width(ch) not in "WF" else " " for ch in text)
    words = sum(1 for word in narrow.split() if any(ch.isalnum() for ch in word))
    parts = [f"{words} word{'s' * (words != 1)}"] if words or not wide else []
    if wide:
        parts.append(f"{wide} character{'s' * (wide != 1)}")
    return " and ".join(parts)


def check_duration(result: GenerationResult, text: str) -> list[Flag]:
    """The audio is far shorter or longer than the text predicts (length.speech_seconds: about
    2.6 words a second for English, 5 characters a second for Chinese)."""
    text = spoken_text(text)
    if not text:  # markup alone ([laugh]): nothing to predict a length from
        return []
    expected = speech_seconds(text, float("inf"))
    seconds = result.seconds
    amount = text_amount(text)
    low, high = expected * SHORT_FACTOR, expected * LONG_FACTOR + LONG_SLACK
    if seconds < low:
        return [flag("too_short", f"{seconds:.2f} s of audio for {amount} (about {expected:.1f} s expected "
                                  f"from the text; under {low:.1f} s is flagged)")]
    if seconds > high:
        return [flag("too_long", f"{seconds:.1f} s of audio for {amount} (about {expected:.1f} s expected "
                                 f"from the text; over {high:.1f} s is flagged)")]
    return []


def _window_db(audio: np.ndarray) -> np.ndarray:
    """The RMS level (dBFS) of each 40 ms window (one frame) of `audio`."""
    hop = SAMPLES_PER_FRAME
    count = len(audio) // hop
    if count == 0:
        return np.zeros(0)
    windows = np.asarray(audio[:count * hop], dtype=np.float64).reshape(count, hop)
    rms = np.sqrt(np.mean(windows * windows, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def check_silence(result: GenerationResult) -> list[Flag]:
    """Most of the line is silence: the model produced a pause instead of speech."""
    levels = _window_db(result.audio)
    if len(levels) < SILENCE_MIN_WINDOWS:
        return []
    share = float(np.mean(levels < SILENCE_DB))
    if share <= SILENCE_SHARE:
        return []
    return [flag("silence", f"{share:.0%} of its {len(levels) / FRAME_RATE:.1f} s is silence "
                            f"(below {SILENCE_DB:g} dBFS; over {SILENCE_SHARE:.0%} is flagged)")]


def check_clipping(result: GenerationResult) -> list[Flag]:
    """Many samples at full scale: the waveform is clipped (or would be, once written)."""
    audio = np.asarray(result.audio)
    if audio.size == 0:
        return []
    clipped = int(np.count_nonzero(np.abs(audio) >= CLIP_LEVEL))
    share = clipped / audio.size
    if clipped < CLIP_MIN_SAMPLES or share <= CLIP_SHARE:
        return []
    return [flag("clipping", f"{clipped} samples ({share:.2%}) at full scale (|x| >= {CLIP_LEVEL:g}; "
                             f"over {CLIP_SHARE:.1%} is flagged)")]


def _longest_run(mask: np.ndarray) -> int:
    """The length of the longest stretch of True in a 1-D boolean array."""
    if not mask.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return int((edges[1::2] - edges[::2]).max())


def longest_loop(codes: np.ndarray, max_period: int = LOOP_MAX_PERIOD) -> tuple[int, int]:
    """(period, frames) of the longest stretch in which the first codebook repeats itself with
    that period (a frame, or an n-gram of frames, over and over); (0, 0) when there is none.

    The first codebook carries most of what is said; the finer ones vary even in a stuck loop.
    """
    row = np.asarray(codes)[0] if np.asarray(codes).ndim == 2 else np.asarray(codes)
    best = (0, 0)
    for period in range(1, min(max_period, len(row) // LOOP_MIN_REPEATS) + 1):
        run = _longest_run(row[period:] == row[:-period])
        frames = run + period
        if frames >= period * LOOP_MIN_REPEATS and frames > best[1]:
            best = (period, frames)
    return best


def check_loop(result: GenerationResult) -> list[Flag]:
    """The codes are caught in a loop: one frame or stretch of frames repeated for 2 s or more."""
    period, frames = longest_loop(result.codes)
    if frames < LOOP_MIN_FRAMES:
        return []
    what = "one frame" if period == 1 else f"a stretch of {period} frames ({period / FRAME_RATE:.2f} s)"
    return [flag("loop", f"{what} repeats {frames / period:.0f} times in a row, {frames / FRAME_RATE:.1f} s "
                         f"of its {result.seconds:.1f} s (a repeat over {LOOP_MIN_FRAMES / FRAME_RATE:g} s "
                         "is flagged)")]


def builtin_checks(result: GenerationResult, request: GenerationRequest, text: str) -> list[Flag]:
    """Every built-in check on one result, in a fixed order."""
    flags = check_finished(result, request)
    if not flags:  # a line cut at the limit is too long by construction: say it once
        flags += check_duration(result, text)
    return flags + check_silence(result) + check_clipping(result) + check_loop(result)


# ---------------------------------------------------------------- choosing a try


def severity(flags: Sequence[Flag]) -> int:
    return sum(SEVERITY.get(str(f.get("code")), DEFAULT_SEVERITY) for f in flags)


def rank(flags: Sequence[Flag], attempt: int) -> tuple[int, int, int]:
    """Sort key of one try: the mildest flags first, then the fewest, then the earliest try."""
    return severity(flags), len(flags), attempt


def best_try(tries: Sequence[Sequence[Flag]]) -> int:
    """The index of the try to keep among `tries` (each try's flags)."""
    return min(range(len(tries)), key=lambda k: rank(tries[k], k))


# ---------------------------------------------------------------- one render's checker


def stand_in_line(request: GenerationRequest) -> PlannedLine:
    """A PlannedLine for a request that came without one (the hook always gets a line)."""
    return PlannedLine(section="", speaker=None, display_text=request.text, request=request, pause_after=0.0)


class LineChecker:
    """The checks of one render: the built-in ones, the plugins' `check_line`, and speech
    recognition when `guards.asr_model` is set (its model loads at the first line it checks, on the
    device of `session`, or `device` when the session's model runs elsewhere: guards_asr.asr_device)."""

    def __init__(self, settings: GuardSettings | None = None, *, root: Path | None = None,
                 plugin_checks: Callable[..., list[Flag]] | None = None,
                 transcriber: Callable | None = None, session: Any = None, device: str | None = None) -> None:
        self.settings = settings or GuardSettings()
        if plugin_checks is None:
            from higgs_cli.plugins.manager import check_line as plugin_checks
        self.plugin_checks = plugin_checks
        self.asr = None
        if self.enabled and self.settings.asr_model:
            from higgs_cli.project.building.guards_asr import AsrCheck

            self.asr = AsrCheck(self.settings.asr_model, self.settings.max_wer, root=root, transcriber=transcriber,
                                session=session, device=device)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def check(self, request: GenerationRequest, result: GenerationResult,
              line: PlannedLine | None = None) -> list[Flag]:
        """Every flag on `result` (generated for `request`, the try as sent); [] when guards are off."""
        if not self.enabled:
            return []
        line = line or stand_in_line(request)
        text = line.display_text or request.text
        flags = builtin_checks(result, request, text)
        if self.asr is not None:
            flags += self.asr.check(result, text)
        return flags + self.plugin_checks(line=line, request=request, result=result)
