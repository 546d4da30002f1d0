"""File names for a build: the master from the title, a stem per line from its id, else its section and speaker.

Names keep letters and digits of any script ("游戏对白" stays itself, not "project")
and nothing a file system could read as a path or a control character.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from higgs_cli.plugins.task import PlannedLine

MAX_NAME_BYTES = 160  # well under the 255 bytes most file systems allow, with room for a suffix
_WORD_SEPARATORS = re.compile(r"[\W_]+")  # \W is Unicode-aware: letters of every script are words
_UNSAFE = re.compile(r"[^\w.-]+")


def _cap(name: str) -> str:
    """`name` cut to MAX_NAME_BYTES of UTF-8, at a character boundary."""
    return name.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", errors="ignore")


def slugify(text: str) -> str:
    """A title as a file name: lower case, words joined by '-'; 'project' when nothing is left."""
    slug = _WORD_SEPARATORS.sub("-", unicodedata.normalize("NFC", text).lower()).strip("-")
    return _cap(slug).strip("-") or "project"


def safe_name(text: str | None) -> str:
    """A section id or speaker as part of a file name; 'none' when there is nothing."""
    name = _UNSAFE.sub("-", unicodedata.normalize("NFC", text or "")).strip("-.")
    return _cap(name).strip("-.") or "none"


def section_numbers(planned: Sequence[PlannedLine]) -> list[int]:
    """Each line's position within its section, counted from 0."""
    seen: dict[str, int] = {}
    numbers = []
    for line in planned:
        numbers.append(seen.get(line.section, 0))
        seen[line.section] = numbers[-1] + 1
    return numbers


def stem_names(planned: Sequence[PlannedLine], ids: Sequence[str | None] | None = None) -> list[str]:
    """A stem's file name per line: `<id>.wav` for a line with an `id:` (`<id>_<k>.wav` for chunk k
    of a line split in several), which a game engine or a DAW session can refer to, else
    `<section>_<nnn>_<speaker>.wav` with nnn its number in the section counted from 1, as line
    references count (`talk_003_host.wav` is `talk:3`). A name two lines would share, also with case ignored as some
    file systems ignore it, gets `_2`, `_3`, ... on the later lines."""
    ids = list(ids) if ids is not None else [None] * len(planned)
    chunks = Counter(line_id for line_id in ids if line_id)
    seen: Counter = Counter()
    names = []
    for line, n, line_id in zip(planned, section_numbers(planned), ids, strict=True):
        if line_id:
            seen[line_id] += 1
            names.append(safe_name(line_id) + (f"_{seen[line_id]}" if chunks[line_id] > 1 else ""))
        else:
            # numbered from 1, as `SECTION:N` references are
            names.append(f"{safe_name(line.section)}_{n + 1:03d}_{safe_name(line.speaker)}")
    taken: set[str] = set()
    unique = []
    for name in names:
        candidate, k = name, 2
        while candidate.casefold() in taken:
            candidate, k = f"{name}_{k}", k + 1
        taken.add(candidate.casefold())
        unique.append(f"{candidate}.wav")
    return unique
