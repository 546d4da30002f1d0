"""What an importer makes: a draft project (speakers, sections, lines), and its project.yaml text.

Every string is written as a JSON string, which is a valid YAML double-quoted
scalar: any text, marker or quote survives, and nothing is read as a number or
a boolean. Names are made to fit the schema's rules here, once for all sources.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field

from higgs_cli.engine.text import MAX_TEXT_CHARS, nothing_to_speak
from higgs_cli.project.reading.schema import LINE_KEYS, MAX_NAME_CHARS, MAX_TITLE_CHARS, SPEAKER_NAME

PLACEHOLDER_VOICE = "a clear, natural voice"  # a described voice renders with no recording at all
PLACEHOLDER_VOICES = (  # one per character, in order, so that an imported cast does not all sound alike
    "a warm, mid-pitched female voice, calm and clear",
    "a deep male voice, slow and measured",
    "a bright young female voice, quick and lively",
    "a gravelly older male voice, unhurried",
    "a clear tenor male voice, friendly and open",
    "a low, husky female voice, relaxed",
    "a light, youthful male voice, energetic",
    "a crisp older female voice, precise",
)


def placeholder_voice(index: int, *, gender: str | None = None, age: str | None = None,
                      accent: str | None = None) -> str:
    """A described voice for the `index`-th character: from its sheet's gender, age and accent where
    given ("an old male voice with a Scottish accent"), else one of PLACEHOLDER_VOICES by index."""
    if not (gender or age or accent):
        return PLACEHOLDER_VOICES[index % len(PLACEHOLDER_VOICES)]
    words = " ".join(w for w in (age, gender) if w)
    text = f"{words} voice" if words else "a voice"
    if words:
        text = ("an " if words[0].lower() in "aeiou" else "a ") + text
    if accent:
        text += f" with {'an' if accent[0].lower() in 'aeiou' else 'a'} {accent} accent"
    return " ".join(text.split())
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


@dataclass
class DraftLine:
    text: str
    speaker: str | None = None
    id: str | None = None
    scene: str | None = None
    direction: str | None = None  # how to say it: joins the scene (`direction:`)


@dataclass
class DraftSection:
    id: str
    task: str
    title: str  # what it was called in the source (a heading, a scene name), kept as a comment
    speaker: str | None = None
    lines: list[DraftLine] = field(default_factory=list)
    named: bool = True  # the source named it (a heading); False for a made-up name


@dataclass
class DraftSpeaker:
    name: str
    source_name: str  # as the source spelled it ("Old Man")
    voice: str | None = None  # a library voice of that name, when there is one
    description: str = PLACEHOLDER_VOICE


@dataclass
class Draft:
    title: str
    source: str
    kind: str  # "sheet", "manuscript" or "epub"
    speakers: dict[str, DraftSpeaker] = field(default_factory=dict)
    sections: list[DraftSection] = field(default_factory=list)
    author: str | None = None
    output: dict = field(default_factory=dict)
    output_reason: str | None = None  # why the output format is what it is (the import summary says it)
    files: dict[str, bytes] = field(default_factory=dict)  # written into the project folder (a cover image)

    @property
    def line_count(self) -> int:
        return sum(len(section.lines) for section in self.sections)


def speaker_name(source_name: str, taken: set[str]) -> str:
    """A schema-valid, unused speaker name for a character ("Old Man" -> "Old_Man")."""
    base = re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", source_name.strip())).strip("_.-")
    base = base[:MAX_NAME_CHARS - 4] or "speaker"
    if not SPEAKER_NAME.fullmatch(base) or base in LINE_KEYS:
        base = f"{base}_" if SPEAKER_NAME.fullmatch(f"{base}_") else "speaker"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def section_id(title: str, taken: set[str], fallback: str) -> str:
    """A schema-valid, unused section id from a heading or scene name ("Chapter 1: Rain" -> "chapter-1-rain")."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", unicodedata.normalize("NFKD", title).encode("ascii", "ignore")
                  .decode().lower()).strip("-")[:MAX_NAME_CHARS - 4].strip("-")
    base = slug or fallback
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def split_long(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """A paragraph as lines: cut at sentence ends (then at spaces) when longer than a line may be;
    none when nothing is left to speak once invisible characters go (a line of zero-width spaces)."""
    if nothing_to_speak(text):
        return []
    if len(text) <= limit:
        return [text]
    parts, current = [], ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:  # one enormous sentence: cut at the last space that fits
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            parts.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            parts.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        parts.append(current)
    return [p for p in parts if p]


def clean_title(title: str) -> str:
    title = " ".join(title.split())[:MAX_TITLE_CHARS].strip()
    return "".join(c for c in title if c.isprintable()) or "Imported project"


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return " ".join(text.split())[:120]


def to_yaml(draft: Draft) -> str:
    """The draft as a commented project.yaml."""
    out = [f"# Imported by `higgs project import` from {_comment(draft.source)}.",
           "# Check it with `higgs project validate`, then `higgs project render`. Reference: docs/project-format.md.",
           "", "version: 1", f"title: {_q(draft.title)}"]
    if draft.author:
        out.append(f"author: {_q(draft.author)}")
    if draft.output:
        out += ["", "output:"] + [f"  {key}: {json.dumps(value)}" for key, value in draft.output.items()]
    out += ["", "# Each speaker needs one voice source: voice: NAME (a library voice, `higgs voice add`),",
            "# audio: FILE with transcript: (a recording in this folder), or description: alone.", "speakers:"]
    for speaker in draft.speakers.values():
        out.append(f"  {_q(speaker.name)}:")
        if speaker.source_name != speaker.name:
            out.append(f"    name: {_q(speaker.source_name)}  # as subtitles and the review page show it")
        if speaker.voice:
            out.append(f"    voice: {_q(speaker.voice)}")
        else:
            out.append(f"    description: {_q(speaker.description)}  # no voice yet: describe it, or use voice:")
    out += ["", "script:"]
    for section in draft.sections:
        out.append(f"  # {_comment(section.title)}" if section.title else "  #")
        out += [f"  - id: {_q(section.id)}", f"    task: {section.task}"]
        if section.title:
            out.append(f"    title: {_q(section.title)}")  # the chapter's name in m4b/mp3 masters
        if section.speaker:
            out.append(f"    speaker: {_q(section.speaker)}")
        out.append("    lines:")
        for line in section.lines:
            keys = [("id", line.id), ("speaker", line.speaker if line.speaker != section.speaker else None),
                    ("text", line.text), ("scene", line.scene), ("direction", line.direction)]
            given = [(k, v) for k, v in keys if v is not None]
            out += [f"      {'- ' if i == 0 else '  '}{k}: {_q(v)}" for i, (k, v) in enumerate(given)]
    return "\n".join(out) + "\n"
