"""Line references: how a user names a line on the command line, and how every message names it.

    intro:3     the third line of section `intro`, counted from 1 as `project status` shows it
    bob-joke    the line whose `id:` is bob-joke (all of its chunks, for a long `clone` line)
    bob-joke:2  chunk 2 of that line

Status, the manifest, the render summary and every error count the same way:
a section's lines are its *planned* lines, so a `clone` line split into three
chunks is three lines there (intro:1, intro:2, intro:3). A line's `id:` names
the line as written in project.yaml, whatever it is split into, and keeps
naming it when lines are inserted before it. Line ids never equal a section id
(the loader refuses it), so `NAME:N` is never ambiguous.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from higgs_cli.errors import UsageError
from higgs_cli.project.folder.names import section_numbers
from higgs_cli.project.reading.problems import did_you_mean

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Line, Project
    from higgs_cli.plugins.task import PlannedLine

REF_FORMS = "SECTION:N (N from 1, as `higgs project status` numbers lines), a line's id:, or ID:N (chunk N)"


def source_lines(project: Project, planned: Sequence[PlannedLine]) -> list[Line | None]:
    """The script line each planned line speaks: a task's `extra["line"]` (clone's chunks), else the
    line at the same position when the task planned one request per line; None when unknown."""
    lines_of = {section.id: section.lines for section in project.sections}
    counts: dict[str, int] = {}
    for line in planned:
        counts[line.section] = counts.get(line.section, 0) + 1
    found: list[Line | None] = []
    for line, n in zip(planned, section_numbers(planned), strict=True):
        script = lines_of.get(line.section, ())
        index = line.extra.get("line") if isinstance(line.extra.get("line"), int) else None
        if index is None and counts[line.section] == len(script):
            index = n
        found.append(script[index] if index is not None and 0 <= index < len(script) else None)
    return found


class LineRefs:
    """The references of one project's planned lines, and their resolution."""

    def __init__(self, project: Project, planned: Sequence[PlannedLine]) -> None:
        self.planned = planned
        self.numbers = section_numbers(planned)
        self.refs = [f"{line.section}:{n + 1}" for line, n in zip(planned, self.numbers, strict=True)]
        self.sources = source_lines(project, planned)
        self.ids: list[str | None] = [line.id if line is not None else None for line in self.sources]
        self.sections: dict[str, list[int]] = {}
        self.by_id: dict[str, list[int]] = {}
        for i, line in enumerate(planned):
            self.sections.setdefault(line.section, []).append(i)
            if self.ids[i]:
                self.by_id.setdefault(self.ids[i], []).append(i)
        self.section_ids = [section.id for section in project.sections]

    def ref(self, i: int) -> str:
        """`SECTION:N` of planned line i."""
        return self.refs[i]

    def name(self, i: int) -> str:
        """The stablest name of line i, for the lock file: its id (`ID:K` for chunk K of a split line),
        else `SECTION:N`."""
        line_id = self.ids[i]
        if line_id is None:
            return self.refs[i]
        chunks = self.by_id[line_id]
        return line_id if len(chunks) == 1 else f"{line_id}:{chunks.index(i) + 1}"

    def resolve(self, ref: str) -> list[int]:
        """The planned lines `ref` names (in track order); UsageError saying what exists when none."""
        ref = ref.strip()
        if ":" in ref:
            name, _, number = ref.rpartition(":")
            if not number.isdigit() or int(number) < 1:
                raise UsageError(f"'{ref}' is not a line reference: the part after ':' must be a number from 1",
                                 hint=f"name a line as {REF_FORMS}")
            n = int(number)
            if name in self.sections:
                lines = self.sections[name]
                if n > len(lines):
                    raise UsageError(f"no line '{ref}'; {name} has {_span(len(lines))}",
                                     hint="`higgs project status` lists every line with its number")
                return [lines[n - 1]]
            if name in self.by_id:
                chunks = self.by_id[name]
                if n > len(chunks):
                    raise UsageError(f"no chunk '{ref}'; line '{name}' has {_span(len(chunks), 'chunk')}")
                return [chunks[n - 1]]
            raise UsageError(f"no section or line id '{name}' (in '{ref}'){self._close(name)}",
                             hint=self._known())
        if ref in self.by_id:
            return list(self.by_id[ref])
        if ref in self.sections:
            raise UsageError(f"'{ref}' is a section, not a line",
                             hint=f"name one of its lines as {ref}:N (it has {_span(len(self.sections[ref]))}), "
                                  "or pass --section")
        raise UsageError(f"no line with id '{ref}'{self._close(ref)}", hint=self._known())

    def resolve_all(self, refs: Iterable[str]) -> list[int]:
        """Every line the refs name, once each, in track order."""
        found: set[int] = set()
        for ref in refs:
            found.update(self.resolve(ref))
        return sorted(found)

    def section(self, section_id: str) -> list[int]:
        if section_id not in self.sections:
            raise UsageError(f"no section '{section_id}'{did_you_mean(section_id, self.section_ids)}",
                             hint=f"sections: {', '.join(self.section_ids)}")
        return list(self.sections[section_id])

    def _close(self, name: str) -> str:
        return did_you_mean(name, [*self.by_id, *self.sections])

    def _known(self) -> str:
        sections = ", ".join(f"{s} ({_span(len(v))})" for s, v in self.sections.items())
        ids = ", ".join(sorted(self.by_id)) or "none"
        return f"name a line as {REF_FORMS}; sections: {sections}; line ids: {ids}"


def _span(count: int, what: str = "line") -> str:
    return f"{what} 1" if count == 1 else f"{what}s 1-{count}"
