"""Text handling before prompting: normalization, chunking of long narration, limits.

Pure Python (no torch). Higgs Audio V2 was trained on text that Boson's
example pipeline had rewritten: script markers such as ``[laugh]`` become
sound-event tags (``<SE>[Laughter]</SE>``), Chinese punctuation becomes ASCII,
parentheses go, temperatures are spelled out, whitespace is collapsed and a
final period is added. `normalize_text` applies the same rewrites, so a
prompt looks like what the model saw in training.

Chunk raw text first (`chunk_text` uses paragraph breaks and CJK sentence
marks that normalization rewrites), then normalize each chunk.
"""

from __future__ import annotations

import re
import unicodedata

from higgs_cli.errors import UsageError
from higgs_cli.untrusted import check_utf8

MAX_TEXT_CHARS = 5000
"""The longest text one line may carry (project lines, `higgs say`). Longer
narration belongs in a `clone` section, which chunks it."""

# --- normalization -----------------------------------------------------------

# Full-width and Chinese punctuation -> ASCII. The comma gets a trailing space
# (collapsed later) so that "你好，世界" keeps a pause-like gap. Deviations from
# Boson's table, on purpose: 《》 become quotes, not "<" ">" (which could be
# read as the start of a tag), and the middle dot in transliterated names
# (约翰·史密斯) becomes a space rather than a sentence-ending ".".
_PUNCTUATION = str.maketrans({
    "，": ", ",
    "。": ".",
    "：": ":",
    "；": ";",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "【": "[",
    "】": "]",
    "《": '"',
    "》": '"',
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "、": ",",
    "—": "-",
    "…": "...",
    "·": " ",
    "「": '"',
    "」": '"',
    "『": '"',
    "』": '"',
})

# After the full-width stops become ASCII, a CJK sentence that runs straight
# into Latin text ("里斯本。That") needs the space a reader would hear.
_CJK_STOP_BEFORE_LATIN = re.compile(r"(?<=[\u3400-\u9fff\uf900-\ufaff])([.!?;:])(?=[A-Za-z0-9])")

# Line breaks of every kind become "\n", tabs become spaces, other control
# characters (and the invisible BOM / zero-width space) are dropped.
_LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_CONTROLS = {cp: None for cp in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROLS.update({ord("\n"): "\n", ord("\t"): " ", 0x200B: None, 0xFEFF: None})
_CONTROLS.update({ord(ch): "\n" for ch in _LINE_BREAKS})

_FAHRENHEIT = re.compile(r"(?:°\s?F|℉)(?![A-Za-z])")
_CELSIUS = re.compile(r"(?:°\s?C|℃)(?![A-Za-z])")

# Script markers -> the sound-event tags the model knows. Case and inner
# spacing are forgiven: "[Laugh]", "[music  start]".
_SE = {
    "laugh": "<SE>[Laughter]</SE>",
    "music": "<SE>[Music]</SE>",
    "music start": "<SE_s>[Music]</SE_s>",
    "music end": "<SE_e>[Music]</SE_e>",
    "sing start": "<SE_s>[Singing]</SE_s>",
    "sing end": "<SE_e>[Singing]</SE_e>",
    "humming start": "<SE>[Humming]</SE>",  # sic: Boson's rewrite uses <SE>, not <SE_s>
    "humming end": "<SE_e>[Humming]</SE_e>",
    "applause": "<SE>[Applause]</SE>",
    "cheering": "<SE>[Cheering]</SE>",
    "cough": "<SE>[Cough]</SE>",
}
MARKERS: tuple[str, ...] = tuple(f"[{name}]" for name in _SE)
"""The script markers `normalize_text` understands, as written in scripts."""

_MARKER = re.compile(
    r"(?<!<SE>)(?<!<SE_s>)(?<!<SE_e>)"  # already a tag: leave it (keeps normalization idempotent)
    r"\[\s*(laugh|applause|cheering|cough|music(?:\s+(?:start|end))?|(?:sing|humming)\s+(?:start|end))\s*\]",
    re.IGNORECASE,
)

# A text that already ends with one of these needs no final period.
_FINAL_MARKS = ".!?,;:\"'»।॥؟؛،"
_FINAL_TAGS = ("</SE>", "</SE_s>", "</SE_e>")


def _has_visible(text: str) -> bool:
    """Whether `text` has a character that is neither space nor an invisible format character (Cf)."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def _marker(match: re.Match) -> str:
    return _SE[" ".join(match.group(1).lower().split())]


def normalize_text(text: str) -> str:
    """Rewrite `text` into the form the model was trained on.

    In order: NFC; line breaks unified to "\\n", tabs to spaces, other control
    characters dropped; Chinese / full-width punctuation to ASCII; "(" and ")"
    dropped; °F / °C (and ℉ / ℃) spelled out as "degrees Fahrenheit" /
    "degrees Celsius"; script markers (`MARKERS`) to sound-event tags; spaces
    collapsed within each line and blank lines removed (single line breaks
    stay); finally a "." is appended unless the text ends with one of
    `. ! ? , ; : " '` (or » and the sentence marks of Devanagari and Arabic)
    or a closing `</SE>`, `</SE_s>`, `</SE_e>` tag. Empty input, and text made
    only of invisible format characters (Unicode category Cf: zero-width
    joiners, bidi marks, soft hyphens ...), gives "".

    Idempotent: normalizing twice gives the same text.
    """
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_CONTROLS)
    text = _CJK_STOP_BEFORE_LATIN.sub(r"\1 ", text.translate(_PUNCTUATION))
    text = text.replace("(", " ").replace(")", " ")
    text = _FAHRENHEIT.sub(" degrees Fahrenheit", text)
    text = _CELSIUS.sub(" degrees Celsius", text)
    text = _MARKER.sub(_marker, text)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    text = "\n".join(line for line in lines if line)
    if not _has_visible(text):  # only format characters (joiners, bidi marks, ...): nothing to speak
        return ""
    if text and not (text[-1] in _FINAL_MARKS or text.endswith(_FINAL_TAGS)):
        text += "."
    return text


# --- chunking ----------------------------------------------------------------

_CLOSERS = "\"'”’」』）)\\]»"
_CJK_RANGES = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK = re.compile(f"[{_CJK_RANGES}]")

# Each pattern matches a separator; a cut goes right after the match. The
# cuts of one level split its text into segments that concatenate back to it.
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE = re.compile(
    rf"[.!?…]+[{_CLOSERS}]*\s+"  # English: end mark (+ closing quote) + space
    rf"|[.!?]+[{_CLOSERS}]*(?=[{_CJK_RANGES}])"  # an ASCII end mark right before CJK text
    rf"|[。！？]+[{_CLOSERS}]*\s*"  # CJK end marks need no space after them
)
_CLAUSE = re.compile(rf"[,;:]+[{_CLOSERS}]*\s+|[，；：、]+[{_CLOSERS}]*\s*|\s*[—–]+\s*|\s+-\s+")
_WORD = re.compile(r"\s+")
_LEVELS = (_PARAGRAPH, _SENTENCE, _CLAUSE, _WORD)


def _segments(text: str, separator: re.Pattern) -> list[str]:
    cuts = [m.end() for m in separator.finditer(text) if 0 < m.end() < len(text)]
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _hard_split(word: str, max_chars: int) -> list[str]:
    """Cut a run without separators into pieces of at most `max_chars`.

    Prefers a cut next to a CJK character (a natural boundary in text written
    without spaces) and never cuts before a combining mark.
    """
    pieces, start, n = [], 0, len(word)
    while n - start > max_chars:
        end = start + max_chars
        cut = next((k for k in range(end, start, -1)
                    if _CJK.match(word[k - 1]) or _CJK.match(word[k])), end)
        while cut > start + 1 and unicodedata.combining(word[cut]):
            cut -= 1
        pieces.append(word[start:cut])
        start = cut
    pieces.append(word[start:])
    return pieces


def _chunk(text: str, max_chars: int, level: int) -> list[str]:
    if level == len(_LEVELS):
        word = text.strip()
        pieces = _hard_split(word, max_chars)
        # Keep the whitespace around the word so a carried piece stays apart from the next word.
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()):]
        pieces[0] = lead + pieces[0]
        pieces[-1] += trail
        return pieces
    chunks: list[str] = []
    current = ""
    for segment in _segments(text, _LEVELS[level]):
        if len((current + segment).strip()) <= max_chars:
            current += segment
            continue
        if current.strip():
            chunks.append(current)
        current = ""
        if len(segment.strip()) <= max_chars:
            current = segment
            continue
        pieces = _chunk(segment, max_chars, level + 1)
        if level == 0:  # a long paragraph's last piece does not run into the next paragraph
            chunks.extend(pieces)
        else:
            chunks.extend(pieces[:-1])
            current = pieces[-1]
    if current.strip():
        chunks.append(current)
    return chunks


def chunk_text(text: str, max_chars: int = 300) -> list[str]:
    """Split long narration into chunks of at most `max_chars` characters.

    Cuts go at the coarsest boundary that works: paragraphs (blank lines),
    then sentences (`.` `!` `?` `…` followed by a space; `。` `！` `？`
    anywhere), then clauses (`,` `;` `:` followed by a space; `，` `；` `：`
    `、` anywhere; dashes), then words (whitespace). Neighbouring pieces are
    packed greedily up to `max_chars`, except that a paragraph split into
    several chunks never shares a chunk with the next paragraph. A word longer
    than `max_chars` (or CJK text without any boundary) is cut hard, next to a
    CJK character where possible, so every chunk is at most `max_chars` long.

    Chunks are stripped slices of the input, in order, never empty. Invariants:

    - nothing is lost or duplicated: ``"".join("".join(c.split()) for c in
      chunks) == "".join(text.split())`` (the sequence of non-whitespace
      characters is kept; this is the invariant for CJK text without spaces);
    - when every cut falls on whitespace (always the case for text in
      space-separated scripts whose words are shorter than `max_chars`),
      ``" ".join(" ".join(c.split()) for c in chunks) == " ".join(text.split())``.

    Chunk raw text, then pass each chunk to `normalize_text`.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars}")
    return [chunk.strip() for chunk in _chunk(text, max_chars, 0) if chunk.strip()]


# --- limits -----------------------------------------------------------------

def nothing_to_speak(text: str, what: str = "the text") -> str | None:
    """The one message for a text with no words once normalized (control and invisible characters
    dropped), naming the text `what`; None when there is something to speak."""
    if normalize_text(text):
        return None
    return f"{what} has nothing to speak once control and invisible characters are removed"


def check_text(text: str, *, max_chars: int, what: str = "text") -> None:
    """Raise UsageError when `text` is empty, whitespace only, longer than `max_chars`, or not UTF-8 text.

    The length counted is that of the stripped text. `what` names the text in
    the message ("text", "line 3", ...).
    """
    check_utf8(text, what)  # a lone surrogate (an undecodable byte of argv) cannot reach the tokenizer
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{what} is empty", hint="give some words to speak")
    if len(stripped) > max_chars:
        raise UsageError(
            f"{what} is {len(stripped)} characters long; the limit is {max_chars}",
            hint="split it into several lines, or put long narration in a project's clone section, "
                 "which chunks it",
        )
