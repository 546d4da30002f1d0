"""Hooks a higgs plugin can implement, and the marker for implementations (`hookimpl`,
re-exported as `higgs_cli.plugins.hookimpl`).

Built-in tasks (`clone`, `dialogue`, `bgm`, `hum`) are plugins like any other,
registered through the `higgs.plugins` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from higgs_cli.engine.request import GenerationRequest, GenerationResult
    from higgs_cli.plugins.task import PlannedLine, Task

hookspec = pluggy.HookspecMarker("higgs")
hookimpl = pluggy.HookimplMarker("higgs")


@hookspec
def register_tasks(register: Callable[[Task], None]) -> None:
    """Register task types usable as a script section's `task:`.

    Call `register(task)` once per task; `task` implements `higgs_cli.plugins.Task`.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the `higgs` CLI. `cli` is the root `typer.Typer` app."""


@hookspec
def check_line(line: PlannedLine, request: GenerationRequest, result: GenerationResult) -> list[dict] | None:
    """Check one generated line; return its flags (`[]` or None when it is fine).

    Called for every try of every line a render generates, after the built-in quality guards
    (docs/guards.md). `line` is the planned line (its `display_text` is what should be heard),
    `request` the request as sent (this try's seed and the audio it heard), `result` the codes
    and 24 kHz audio. A flag is `{"code": "short-name", "message": "what is wrong, with figures"}`.
    A flagged line is generated again with another seed, and the try with the mildest flags kept.
    """
