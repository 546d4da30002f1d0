"""Collecting a project file's problems: each with its position, sorted, raised all at once.

Problems the loader finds are written `file:line:column: message (expected ...)`;
a task's own `Problem`s keep the position the task gave them. Nothing is
parsed back out of text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from higgs_cli.errors import ValidationError
from higgs_cli.plugins.script import Location
from higgs_cli.plugins.task import Problem

_LAST = 10**9  # problems without a position go after every positioned one


class _Bad:
    """The value of a node that had a problem (already reported)."""

    def __repr__(self) -> str:
        return "BAD"


BAD: Any = _Bad()


class Problems:
    """Every problem found in one project file, in file order once collected."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.display = str(file)
        self._items: list[tuple[int, int, int, str]] = []

    def location(self, node: Node) -> Location:
        mark = node.start_mark
        return Location(self.display, mark.line + 1, mark.column + 1)

    def add(self, node: Node | None, message: str, expected: str | None = None) -> None:
        line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (1, 1)
        self.add_at(line, column, message, expected)

    def add_at(self, line: int, column: int, message: str, expected: str | None = None) -> None:
        text = f"{self.display}:{line}:{column}: {message}" + (f" (expected {expected})" if expected else "")
        self._items.append((line, column, len(self._items), text))

    def add_problem(self, problem: Problem | object) -> None:
        """A problem a task reported, sorted in by its location when it has one.

        Anything that is not a Problem (a plugin written for the older string API)
        is kept as its text, after the positioned problems.
        """
        location = problem.location if isinstance(problem, Problem) else None
        line, column = (location.line, location.column) if location is not None else (_LAST, 0)
        self._items.append((line, column, len(self._items), str(problem)))

    def __len__(self) -> int:
        return len(self._items)

    def messages(self) -> list[str]:
        return [text for *_, text in sorted(self._items)]

    def raise_now(self) -> None:
        """Raise every problem collected so far as one ValidationError."""
        count = len(self._items)
        raise ValidationError(f"{self.file.name} has {count} problem{'' if count == 1 else 's'}", self.messages(),
                              hint="fix them and check again with `higgs project validate`")

    def raise_if_any(self) -> None:
        if self._items:
            self.raise_now()


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest option, or "" when none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def one_of(options: Iterable[str]) -> str:
    options = sorted(options)
    return "one of " + ", ".join(options) if options else "none are defined"
