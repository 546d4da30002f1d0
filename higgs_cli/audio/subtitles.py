"""Subtitles from timed lines: cues laid out for reading, then SubRip (.srt) and WebVTT (.vtt).

`build_cues` turns each line's span in the track into readable cues: script
markers and Boson's sound-event tags are not shown, text is wrapped to at most
`max_lines` lines of `max_chars` characters (a longer line becomes several
cues, its time shared in proportion to their characters), cues never overlap
(crossfaded lines share the overlap half and half), and speaker labels follow
the `labels` setting.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from higgs_cli.engine.text import MARKERS

LABELS = ("auto", "always", "never")
"""Speaker labels: "auto" only when the cues have 2 or more speakers, "always", "never"."""
Labels = Literal["auto", "always", "never"]
MAX_CHARS, MAX_LINES = 42, 2  # the usual subtitle limits (Netflix, BBC: about 42 characters, 2 lines)

# `[laugh]`, `[Music  Start]` as the engine reads them; Boson's tags with what they wrap; `[SPEAKER0]` turns.
_SCRIPT_MARKER = re.compile(
    r"\[\s*(?:" + "|".join(r"\s+".join(map(re.escape, m.strip("[]").split())) for m in MARKERS) + r")\s*\]",
    re.IGNORECASE)
_SOUND_EVENT = re.compile(r"<(SE(?:_[se])?)>.*?</\1>|</?SE(?:_[se])?>", re.DOTALL)
_SPEAKER_TAG = re.compile(r"\[SPEAKER\d+\]")


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


def strip_markers(text: str) -> str:
    """`text` as a viewer reads it: no script markers, sound-event tags or speaker tags; spaces tidied."""
    text = _SPEAKER_TAG.sub(" ", _SOUND_EVENT.sub(" ", _SCRIPT_MARKER.sub(" ", text)))
    lines = (re.sub(r"\s+([,.!?;:])", r"\1", " ".join(line.split())) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def build_cues(lines: Sequence[Cue], *, labels: Labels = "auto", max_chars: int = MAX_CHARS,
               max_lines: int = MAX_LINES) -> list[Cue]:
    """Readable, non-overlapping cues for `lines` (each line's whole span and text as one Cue, in track
    order); lines with nothing to show give none."""
    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    if max_chars < 1 or max_lines < 1:
        raise ValueError("max_chars and max_lines must be at least 1")
    shown = [(line, strip_markers(line.text)) for line in lines]
    shown = [(line, text) for line, text in shown if text]
    speakers = {line.speaker for line, _ in shown if line.speaker}
    labelled = labels == "always" or (labels == "auto" and len(speakers) >= 2)
    spans = _without_overlaps([(line.start, line.end) for line, _ in shown])
    cues: list[Cue] = []
    for (line, text), (start, end) in zip(shown, spans, strict=True):
        speaker = line.speaker if labelled else None
        label = len(speaker) + 2 if speaker else 0  # SRT writes "Name: " before the first line
        pages = _pages(text, max_chars, max_lines, label)
        weights = [len(page.replace("\n", "")) for page in pages]
        total, done = sum(weights), 0
        for page, weight in zip(pages, weights, strict=True):
            a = start + (end - start) * done / total
            done += weight
            b = end if done == total else start + (end - start) * done / total
            cues.append(Cue(a, b, page, speaker))
    return cues


def _without_overlaps(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Spans with each overlap between neighbours split at its middle, so that end <= next start."""
    out = [list(span) for span in spans]
    for prev, nxt in zip(out, out[1:]):
        if prev[1] > nxt[0]:
            middle = max(prev[0], min((prev[1] + nxt[0]) / 2.0, nxt[1]))
            prev[1] = nxt[0] = middle
            nxt[1] = max(nxt[1], middle)
    return [(a, b) for a, b in out]


def _pages(text: str, max_chars: int, max_lines: int, label: int) -> list[str]:
    """`text` in pages of at most `max_lines` lines of at most `max_chars` columns (the first line of
    each page less the room a `label` of that many characters takes: SRT writes it there), lines as
    even as the page count allows."""
    cut = min(label, max_chars // 2)
    tokens = _tokens(text)

    def wrap(width: int) -> list[str]:  # a page's first line is `cut` narrower
        return _wrap(tokens, lambda i: max(1, width - cut) if i % max_lines == 0 else width)

    lines = wrap(max_chars)
    if len(lines) > 1:
        # the narrowest width that needs no more pages: no short last page, no ragged lines
        room = -(-len(lines) // max_lines) * max_lines
        lo, hi = 1, max_chars
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if len(wrap(mid)) <= room else (mid + 1, hi)
        lines = wrap(lo)
    return ["\n".join(lines[i:i + max_lines]) for i in range(0, len(lines), max_lines)]


def _columns(text: str) -> int:
    """Display width: Chinese, Japanese and Korean characters take two columns."""
    if text.isascii():  # no wide character: the common case, measured without a look-up per character
        return len(text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _tokens(text: str) -> list[tuple[bool, str]]:
    """(space before it, word) pairs. Each wide character is a word of its own, as CJK text breaks
    anywhere; closing punctuation stays with the word before it, so no line starts with "，"."""
    out: list[tuple[bool, str]] = []
    for match in re.finditer(r"(\s*)(\S+)", text):
        spaced = bool(match.group(1)) and bool(out)
        word = ""
        for ch in match.group(2):
            if unicodedata.category(ch) in ("Po", "Pe", "Pf") and not word and out and not spaced:
                out[-1] = (out[-1][0], out[-1][1] + ch)
            elif unicodedata.east_asian_width(ch) in "WF":
                if word:
                    out.append((spaced, word))
                    spaced = False
                out.append((spaced, ch))
                spaced, word = False, ""
            else:
                word += ch
        if word:
            out.append((spaced, word))
    return out


def _wrap(tokens: list[tuple[bool, str]], width: Callable[[int], int]) -> list[str]:
    """Greedy wrapping of `tokens`, line i to `width(i)` columns; a word wider than a line is cut."""
    lines: list[str] = []
    line = ""
    for spaced, word in tokens:
        joined = f"{line} {word}" if line and spaced else line + word
        if _columns(joined) <= width(len(lines)) or not line:
            line = joined
        else:
            lines.append(line)
            line = word
        while _columns(line) > (room := width(len(lines))) and len(line) > 1:  # one word longer than a line
            cut = max(1, next(i for i in range(len(line), 0, -1) if _columns(line[:i]) <= room)
                      if _columns(line[:1]) <= room else 1)
            lines.append(line[:cut])
            line = line[cut:]
    if line:
        lines.append(line)
    return lines


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
