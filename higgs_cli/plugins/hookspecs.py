"""Hooks a higgs plugin can implement. Mark implementations with `higgs_cli.plugins.hookimpl`.

Built-in tasks (`clone`, `dialogue`, `bgm`, `hum`) are plugins like any other,
registered through the `higgs.plugins` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from higgs_cli.plugins.task import Task

hookspec = pluggy.HookspecMarker("higgs")


@hookspec
def register_tasks(register: Callable[[Task], None]) -> None:
    """Register task types usable as a script section's `task:`.

    Call `register(task)` once per task; `task` implements `higgs_cli.plugins.task.Task`.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the `higgs` CLI. `cli` is the root `typer.Typer` app."""
