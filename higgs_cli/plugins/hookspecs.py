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
    from higgs_cli.plugins.task import Task

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
