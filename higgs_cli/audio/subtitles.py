"""Subtitles from timed lines: SubRip (.srt) and WebVTT (.vtt)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Cue:
    """One subtitle: seconds from the start of the track, the words, who says them."""

    start: float
    end: float
    text: str
    speaker: str | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.start < 0 or self.end < self.start:
            raise ValueError(f"a cue needs 0 <= start <= end, got {self.start}..{self.end}")


def _timestamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _lines(text: str) -> str:
    """The cue text with no blank lines: a blank line ends a cue in both formats."""
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())


def to_srt(cues: list[Cue]) -> str:
    """SubRip: numbered blocks, `00:00:01,234 --> 00:00:02,000`, speaker as a `Name: ` prefix."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        text = _lines(cue.text)
        if cue.speaker:
            text = f"{cue.speaker}: {text}"
        blocks.append(f"{number}\n{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_webvtt(cues: list[Cue]) -> str:
    """WebVTT: a `WEBVTT` header, `00:00:01.234 --> 00:00:02.000`, speaker as a `<v Name>` voice span."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        # "-->" may not appear in cue text; the escaped ">" already rules it out
        text = _vtt_escape(_lines(cue.text))
        if cue.speaker:
            speaker = re.sub(r"\s+", " ", _vtt_escape(cue.speaker)).strip()
            text = f"<v {speaker}>{text}"
        blocks.append(f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}\n{text}\n")
    return "\n".join(blocks)
