"""A Markdown or plain-text manuscript as a draft audiobook: one `clone` section per chapter.

Chapters start at Markdown headings (the highest level the file uses, `#` if
any) or, in plain text, at lines matching a chapter pattern ("Chapter 3",
"CHAPTER IV: The Sea", "Part Two"; `--chapter-pattern` gives another). Each
paragraph (a blank-line-separated block) becomes a line; the chapter's heading
is its first line, so the title is read aloud. Markdown emphasis, links and
images are reduced to their words.
"""

from __future__ import annotations

import re
from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.project.commands.importers.draft import (
    Draft,
    DraftLine,
    DraftSection,
    DraftSpeaker,
    section_id,
    split_long,
)
from higgs_cli.sheets import read_bytes

NARRATOR = "narrator"
BOOK_OUTPUT = {"loudness": -18, "peak": -3, "max_hours": 24}
OPENING = "Opening"  # the title of text before the first chapter that has no heading of its own


def book_output(draft: Draft, cover: str | None = None) -> None:
    """A book's output settings: M4B (chapters from its sections, title, author, and `cover`, an
    image file in `draft.files`) where this installation can write it, else FLAC;
    `draft.output_reason` says which and why."""
    from higgs_cli.audio.io import can_write

    if can_write("m4b"):
        draft.output = {"format": "m4b", **BOOK_OUTPUT, **({"cover": cover} if cover else {})}
        carried = ["the chapters (one per section)", "the title"] + (["the author"] if draft.author else []) \
            + (["the cover"] if cover else [])
        draft.output_reason = f"m4b: an audiobook file that carries {', '.join(carried[:-1])} and {carried[-1]}"
    else:
        draft.output = {"format": "flac", **BOOK_OUTPUT}
        draft.output_reason = ("flac: this installation cannot write m4b (PyAV with an AAC encoder is missing), "
                               "and flac carries no chapters")
CHAPTER_PATTERN = r"(?i)^\s*(chapter|part|book|prologue|epilogue)\b.{0,80}$"
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")  # [words](url); a bare [laugh] marker has no (url)
_EMPHASIS = re.compile(r"(?<!\w)(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_RULE = re.compile(r"^\s*([-*_]\s*){3,}$")


def _plain(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    return re.sub(r"^\s*(>+|[-*+]\s|\d+[.)]\s)\s*", "", text).strip()


def _paragraphs(lines: list[str], markdown: bool) -> list[str]:
    paragraphs, block, fenced = [], [], False
    for raw in [*lines, ""]:
        if markdown and raw.strip().startswith("```"):
            fenced = not fenced  # code is not read aloud
            continue
        if fenced:
            continue
        if raw.strip() and not (markdown and _RULE.match(raw)):
            block.append(_plain(raw) if markdown else raw.strip())
        elif block:
            text = " ".join(part for part in block if part)
            if text:
                paragraphs.extend(split_long(text))
            block = []
    return paragraphs


def book_title(lines: list[str]) -> tuple[str | None, int]:
    """A Markdown file's one top heading above deeper ones is the book's title: (title, chapter level)."""
    levels = [len(m.group(1)) for line in lines if (m := _HEADING.match(line))]
    if not levels:
        return None, 0
    top = min(levels)
    if levels.count(top) == 1 and len(set(levels)) > 1:
        first = next(line for line in lines if (m := _HEADING.match(line)) and len(m.group(1)) == top)
        return _plain(_HEADING.match(first).group(2)), min(level for level in levels if level > top)
    return None, top


def _chapters(lines: list[str], markdown: bool, pattern: re.Pattern) -> list[tuple[str, list[str]]]:
    """(heading, body lines) per chapter; text before the first chapter is its own, untitled part."""
    if markdown:
        book, top = book_title(lines)
        if book is not None:  # the title heading is not read as part of the opening
            lines = [line for line in lines if not ((m := _HEADING.match(line)) and len(m.group(1)) < top)]
        is_heading = (lambda line: (m := _HEADING.match(line)) is not None and len(m.group(1)) == top)  # noqa: E731
        heading_text = (lambda line: _plain(_HEADING.match(line).group(2)))  # noqa: E731
    else:
        is_heading = (lambda line: pattern.match(line) is not None)  # noqa: E731
        heading_text = str.strip
    chapters: list[tuple[str, list[str]]] = [("", [])]
    for line in lines:
        if is_heading(line):
            chapters.append((heading_text(line), []))
        else:
            chapters[-1][1].append(line)
    return chapters


def read_manuscript(path: Path, *, title: str | None = None, chapter_pattern: str | None = None) -> Draft:
    """A .md, .markdown or .txt manuscript as a draft with one narrator."""
    markdown = path.suffix.lower() in (".md", ".markdown")
    try:
        pattern = re.compile(chapter_pattern or CHAPTER_PATTERN)
    except re.error as error:
        raise UsageError(f"--chapter-pattern {chapter_pattern!r} is not a regular expression ({error})") from None
    where, text = read_bytes(path)
    heading_title = book_title(text.splitlines())[0] if markdown else None
    draft = Draft(title=title or heading_title or path.stem, source=path.name, kind="manuscript")
    book_output(draft)
    draft.speakers[NARRATOR] = DraftSpeaker(NARRATOR, NARRATOR, description="a warm, clear narrator, measured pace")
    for number, (heading, body) in enumerate(_chapters(text.splitlines(), markdown, pattern)):
        paragraphs = _paragraphs(body, markdown)
        if heading:
            paragraphs.insert(0, heading)
        if not paragraphs:
            continue
        taken = {s.id for s in draft.sections}
        draft.sections.append(DraftSection(section_id(heading, taken, f"part-{number}" if number else "opening"),
                                           "clone", heading or OPENING, speaker=NARRATOR,
                                           lines=[DraftLine(p) for p in paragraphs]))
    if not draft.sections:
        raise UsageError(f"{where} has no text to read", hint="give a manuscript with paragraphs of text")
    return draft
