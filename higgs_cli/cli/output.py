"""One place that prints: human text and tables through rich, or JSON with --json.

Commands call `out.result(data, human)`: with --json the data is printed as
one JSON document on stdout; otherwise `human(console)` renders it. Messages
for people (notes, warnings) go to stderr so stdout stays clean for pipes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    console: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def result(self, data: Any, human: Callable[[Console], None] | None = None) -> None:
        """Print a command's result: JSON in --json mode, else through `human`."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        elif human is not None:
            human(self.console)
        elif not self.quiet:
            self.console.print(data)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, highlight=False)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {message}", highlight=False)

    def error(self, message: str) -> None:
        if self.json_mode:
            return
        self.err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)

    @property
    def show_progress(self) -> bool:
        return not (self.json_mode or self.quiet)


out = Output()

RANDOM_MODEL_WARNING = ("this model has random weights (made by `higgs model init-random`): "
                        "it speaks noise, not speech. Use real weights for real audio.")
