"""Recordings into training clips: 24 kHz mono, edges trimmed, long recordings cut at pauses, and the
checks that keep poison out of training (too short, too long, clipped, near-silent).

Silence is found as librosa's `effects.trim` and `effects.split` find it (frame RMS against the
loudest frame, `top_db` below it), in numpy: librosa is not a dependency of higgs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from higgs_cli.audio import io as audio_io
from higgs_cli.engine.request import SAMPLE_RATE

MIN_SECONDS = 1.0  # shorter clips teach little and destabilise the end-of-audio token
MAX_SECONDS = 30.0  # longer ones exceed what one generation of a line is
TOP_DB = 40.0  # below the loudest frame: silence (librosa's trim default is 60; speech rooms are noisier)
FRAME, HOP = 2048, 512  # librosa's defaults, in samples
EDGE_KEEP = 0.05  # seconds of the quiet edge kept before and after speech, so onsets are not cut
CLIPPED_LEVEL = 0.999  # |sample| at full scale
CLIPPED_FRACTION = 0.001  # more than 0.1 % of samples at full scale: the recording clipped
NEAR_SILENT_DB = -50.0  # RMS below this (dBFS): noise floor, not speech
MAX_CLIP_FILE_SECONDS = 600.0  # a transcribed file is one utterance: longer files are refused unread
MAX_RECORDING_SECONDS = 24 * 3600.0  # an untranscribed recording is read WINDOW_SECONDS at a time
WINDOW_SECONDS = 300.0  # what is held of a recording while it is cut (~30 MB)
MIN_PAUSE = 0.3  # seconds of silence that separate phrases
TARGET_CUT = 10.0  # a cut of a long recording grows phrase by phrase until it is this long
MAX_CUT = 20.0  # ... and never past this (well under MAX_SECONDS)
CUT_PAD = 0.1  # seconds of the pause kept on each side of a cut


@dataclass(frozen=True)
class Clip:
    """One utterance ready to encode: 24 kHz mono float32 audio, its transcript, where it came from."""

    audio: np.ndarray
    text: str
    source: str

    @property
    def seconds(self) -> float:
        return audio_io.duration(self.audio)


def load(path) -> np.ndarray:
    """A transcribed clip's file as 24 kHz mono float32 (any rate or channel count is resampled and
    downmixed); AudioError for what cannot be read or is longer than MAX_CLIP_FILE_SECONDS."""
    return audio_io.load_audio(path, max_seconds=MAX_CLIP_FILE_SECONDS)


def recording_cuts(path) -> Iterator[tuple[np.ndarray, int, int]]:
    """A long recording's utterances as (audio, start, end), start and end in samples from the start
    of the file, read WINDOW_SECONDS at a time: the last cut of a window may go on in the next, so
    it is carried over and cut again with it (a cut with no pause in a whole window is not: the checks
    drop it as too long). AudioError, when met, for what cannot be read."""
    carry, offset = np.zeros(0, dtype=np.float32), 0  # offset: where `carry` starts in the file
    blocks = audio_io.audio_blocks(path, max_seconds=MAX_RECORDING_SECONDS, block_seconds=WINDOW_SECONDS)
    block = next(blocks)
    while block is not None:
        following = next(blocks, None)
        window = np.concatenate([carry, block]) if carry.size else block
        spans = cuts(window)
        # the last cut may go on (or grow) in the next window, unless it has had no pause in a whole one
        last = bool(following is not None and spans and spans[-1][1] - spans[-1][0] <= WINDOW_SECONDS * SAMPLE_RATE)
        for start, end in spans[:-1] if last else spans:
            yield window[start:end], offset + start, offset + end
        keep = spans[-1][0] if last else window.size
        carry, offset = window[keep:], offset + keep
        block = following


def voiced_spans(audio: np.ndarray, top_db: float = TOP_DB) -> list[tuple[int, int]]:
    """(start, end) sample spans louder than `top_db` below the loudest frame; [] for silence."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return []
    padded = np.pad(x, FRAME // 2)  # frames centred on hop positions, as librosa's
    energy = np.concatenate(([0.0], np.cumsum(padded * padded)))
    starts = np.arange(0, x.size, HOP)
    ends = np.minimum(starts + FRAME, padded.size)
    rms = np.sqrt(np.maximum(energy[ends] - energy[starts], 0.0) / FRAME)
    loudest = float(rms.max())
    if loudest <= 0.0:
        return []
    loud = rms > loudest * 10.0 ** (-top_db / 20.0)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], loud, [False])).astype(np.int8)))
    return [(int(a) * HOP, min(x.size, int(b) * HOP)) for a, b in zip(edges[::2], edges[1::2])]


def trim(audio: np.ndarray) -> np.ndarray:
    """`audio` without its quiet edges (EDGE_KEEP of them kept); empty for silence."""
    spans = voiced_spans(audio)
    if not spans:
        return audio[:0]
    keep = int(EDGE_KEEP * SAMPLE_RATE)
    return audio[max(0, spans[0][0] - keep):min(audio.size, spans[-1][1] + keep)]


def problem(audio: np.ndarray) -> str | None:
    """Why a trimmed clip would poison training, or None when it is fit to train on."""
    seconds = audio_io.duration(audio)
    if audio.size == 0:
        return "silent"
    if seconds < MIN_SECONDS:
        return f"{seconds:.2f} s of sound: shorter than {MIN_SECONDS:g} s"
    if seconds > MAX_SECONDS:
        return f"{seconds:.1f} s long: longer than {MAX_SECONDS:g} s"
    clipped = float(np.mean(np.abs(audio) >= CLIPPED_LEVEL))
    if clipped > CLIPPED_FRACTION:
        return f"clipped: {clipped:.1%} of its samples are at full scale"
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    level = 20.0 * np.log10(rms) if rms > 0 else -np.inf
    if level < NEAR_SILENT_DB:
        return f"near-silent: {level:.0f} dBFS RMS (speech is above {NEAR_SILENT_DB:g})"
    return None


def cuts(audio: np.ndarray) -> list[tuple[int, int]]:
    """A long recording's utterances as (start, end) sample spans, cut at pauses.

    Voiced spans closer than MIN_PAUSE are one phrase; phrases join until a cut reaches TARGET_CUT
    (never past MAX_CUT); each cut keeps up to CUT_PAD of the pause on either side. A phrase
    longer than MAX_SECONDS stays one cut (it has no pause to cut at; the checks drop it)."""
    phrases: list[list[int]] = []
    for start, end in voiced_spans(audio):
        if phrases and start - phrases[-1][1] < MIN_PAUSE * SAMPLE_RATE:
            phrases[-1][1] = end
        else:
            phrases.append([start, end])
    spans: list[list[int]] = []
    for start, end in phrases:
        if spans and spans[-1][1] - spans[-1][0] < TARGET_CUT * SAMPLE_RATE \
                and end - spans[-1][0] <= MAX_CUT * SAMPLE_RATE:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    pad = int(CUT_PAD * SAMPLE_RATE)
    out = []
    for index, (start, end) in enumerate(spans):
        low, high = max(0, start - pad), min(audio.size, end + pad)
        if index:  # never into the neighbour's half of the pause
            low = max(low, (spans[index - 1][1] + start) // 2)
        if index + 1 < len(spans):
            high = min(high, (end + spans[index + 1][0]) // 2)
        out.append((low, high))
    return out


def span_name(name: str, start: int, end: int) -> str:
    """A cut's source: the file and the span, in seconds."""
    return f"{name} [{start / SAMPLE_RATE:.2f}-{end / SAMPLE_RATE:.2f} s]"
