"""One place that prints: human text and tables through rich, or JSON with --json.

Commands call `out.result(data, human)`: with --json the data is printed as
one JSON document on stdout; otherwise `human(console)` renders it. Messages
for people (notes, warnings) go to stderr so stdout stays clean for pipes.

Rich markup and emoji codes are off on both consoles: user text such as
`[laugh]`, `[SPEAKER0]` or a title "Ep [draft]" prints as written. Styling is
given as `style=` or `rich.text.Text`, never as markup inside a string.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from higgs_cli.engine.request import RANDOM_WEIGHTS_NOTE


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, soft_wrap=True, markup=False, emoji=False, highlight=False)


def json_ready(value: Any) -> Any:
    """`value` with floats rounded for people and machines alike (3 decimals; 3 significant digits
    below 0.01) and NaN or infinity as null, which JSON cannot hold."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, 3) if abs(value) >= 0.01 or value == 0 else float(f"{value:.3g}")
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value


def dump_json(data: Any, *, indent: int | None = 2) -> str:
    return json.dumps(json_ready(data), indent=indent, ensure_ascii=False, default=str)


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    console: Console = field(default_factory=_console)
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _noted_random: bool = False
    _warnings: list[str] = field(default_factory=list)  # --json: held for the result document, not stderr

    def reset(self) -> None:
        """Back to the defaults: once per command line (tests run many in one process)."""
        self.json_mode = False
        self.quiet = False
        self._noted_random = False
        self._warnings = []

    def result(self, data: Any, human: Callable[[Console], None] | None = None, *, to_stderr: bool = False) -> None:
        """Print a command's result: JSON in --json mode, else through `human`.

        `to_stderr` when stdout carries something else (audio): the result is then a message,
        which -q silences.
        """
        if self.json_mode:
            if self._warnings and isinstance(data, dict):  # --json keeps stderr quiet: warnings are a field
                given = list(data.get("warnings") or [])  # a result that lists its warnings already
                data = {**data, "warnings": given + [w for w in self._warnings if w not in given]}
                self._warnings = []
            (sys.stderr if to_stderr else sys.stdout).write(dump_json(data) + "\n")
        elif to_stderr:
            if not self.quiet:
                (human or (lambda console: console.print(data)))(self.err)
        elif human is not None:
            human(self.console)
        elif not self.quiet:
            self.console.print(data)

    def take_warnings(self) -> list[str]:
        """The warnings --json held back and no result has carried yet (an error document carries them)."""
        held, self._warnings = self._warnings, []
        return held

    def note(self, message: str) -> None:
        """A message for people on stderr; none with --json or -q."""
        if not (self.quiet or self.json_mode):
            self.err.print(message)

    def random_weights(self) -> None:
        """The random-weights note, once per command (the JSON result carries it as a field)."""
        if not self._noted_random:
            self._noted_random = True
            self.note(f"note: {RANDOM_WEIGHTS_NOTE}")

    def warn(self, message: str) -> None:
        """A warning on stderr; with --json, a `warnings` field of the command's result instead."""
        if self.json_mode:
            self._warnings.append(message)
            return
        self.err.print(Text.assemble(("warning:", "yellow"), " ", message))

    def error(self, message: str) -> None:
        if self.json_mode:
            return
        self.err.print(Text.assemble(("error:", "bold red"), " ", message))

    @property
    def show_progress(self) -> bool:
        return not (self.json_mode or self.quiet)


out = Output()


def set_json(value: bool) -> None:
    """Callback of every `--json` flag: on the root or on a command, it turns JSON on."""
    if value:
        out.json_mode = True


def set_quiet(value: bool) -> None:
    """Callback of every `-q/--quiet` flag."""
    if value:
        out.quiet = True


def human_size(size: int | None) -> str:
    """Bytes in binary units (KiB = 1024 bytes), as `du -h` counts them."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
