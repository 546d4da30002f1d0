"""The one plugin manager. Built-in and third-party plugins load the same way:
through the `higgs.plugins` entry-point group.

A plugin that fails to import, to validate, or to register is skipped and kept
in `failures` (the CLI reports each once, on stderr): one broken third-party
package must not take down `higgs --help` or the commands that do not need it.
`HIGGS_DISABLE_PLUGINS=name,...` skips plugins by entry-point name.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from higgs_cli.errors import HiggsError
from higgs_cli.plugins import hookspecs
from higgs_cli.plugins.task import Task

ENTRY_POINT_GROUP = "higgs.plugins"
DISABLE_VARIABLE = "HIGGS_DISABLE_PLUGINS"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped: its entry-point name, distribution and what went wrong."""

    name: str
    distribution: str | None
    error: str

    @property
    def message(self) -> str:
        source = f" (from {self.distribution})" if self.distribution else ""
        return (f"plugin '{self.name}'{source} is broken and was skipped: {self.error}\n"
                f"  hint: update or uninstall it with pip, or set {DISABLE_VARIABLE}={self.name} to skip it quietly")


class HiggsPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what higgs reports: each plugin's distribution, the broken ones."""

    def __init__(self) -> None:
        super().__init__("higgs")
        self.distributions: dict[str, str] = {}  # entry-point name -> "distribution version"
        self.failures: list[PluginFailure] = []
        self.disabled: list[str] = []
        self._told: set[str] = set()

    def untold_failures(self) -> list[PluginFailure]:
        """The failures not returned by an earlier call: each broken plugin is reported once."""
        new = [failure for failure in self.failures if failure.name not in self._told]
        self._told.update(failure.name for failure in new)
        return new

    def fail(self, name: str, error: BaseException) -> None:
        """Drop a plugin that broke, and remember why (once per plugin)."""
        if self.get_plugin(name) is not None:
            self.unregister(name=name)
        if all(failure.name != name for failure in self.failures):
            message = f"{type(error).__name__}: {error}"
            self.failures.append(PluginFailure(name, self.distributions.pop(name, None), message))


def disabled_plugins() -> set[str]:
    """The entry-point names listed in $HIGGS_DISABLE_PLUGINS (comma-separated)."""
    return {name.strip() for name in os.environ.get(DISABLE_VARIABLE, "").split(",") if name.strip()}


def _call_each(pm: HiggsPluginManager, hook: str, plugin: object | None = None, **kwargs: Any) -> None:
    """Call one hook plugin by plugin (or only `plugin`'s), dropping any plugin whose hook raises."""
    for impl in getattr(pm.hook, hook).get_hookimpls():
        if plugin is not None and impl.plugin is not plugin:
            continue
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
        except Exception as error:  # third-party code: anything may come out of it
            pm.fail(impl.plugin_name, error)


def _load(pm: HiggsPluginManager, entry_point: metadata.EntryPoint) -> None:
    """Import and register one plugin; a failure drops it and is recorded."""
    dist = getattr(entry_point, "dist", None)
    if dist is not None:
        pm.distributions[entry_point.name] = f"{dist.name} {dist.version}"
    try:
        plugin = entry_point.load()
        pm.register(plugin, name=entry_point.name)
        pm.check_pending()  # hook implementations that match no hookspec: a broken plugin
    except Exception as error:
        pm.fail(entry_point.name, error)
        return
    _call_each(pm, "register_tasks", plugin, register=lambda task: None)  # its tasks must register cleanly


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> HiggsPluginManager:
    """Build the manager once per process: hookspecs, then every entry point not disabled."""
    pm = HiggsPluginManager()
    pm.add_hookspecs(hookspecs)
    disabled = disabled_plugins()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        name = entry_point.name
        if name in disabled:
            if name not in pm.disabled:
                pm.disabled.append(name)
        elif pm.get_plugin(name) is None and all(f.name != name for f in pm.failures):
            _load(pm, entry_point)  # (a name seen twice: one distribution on two paths)
    return pm


def register_commands(cli: Any) -> None:
    """Let each plugin add its commands to the root app; one that fails is dropped, not fatal."""
    _call_each(get_plugin_manager(), "register_commands", cli=cli)


def _flags_of(returned: Any) -> list[dict]:
    """A checker's return value as flags; anything else is a broken checker (ValueError)."""
    if returned is None:
        return []
    if not isinstance(returned, (list, tuple)):
        raise ValueError(f"check_line returned {type(returned).__name__}, not a list of flags")
    flags = []
    for item in returned:
        if not (isinstance(item, dict) and isinstance(item.get("code"), str) and item["code"]
                and isinstance(item.get("message"), str)):
            raise ValueError(f"check_line returned {item!r}: a flag is {{'code': str, 'message': str}}")
        flags.append({"code": item["code"], "message": item["message"]})
    return flags


def check_line(**kwargs: Any) -> list[dict]:
    """Every plugin's flags on one generated line (`check_line(line, request, result)`).

    A checker that raises or returns something other than flags is dropped and reported
    like any broken plugin: one bad checker must not stop a render.
    """
    pm = get_plugin_manager()
    flags: list[dict] = []
    for impl in pm.hook.check_line.get_hookimpls():
        try:
            flags += _flags_of(impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs}))
        except Exception as error:  # third-party code: anything may come out of it
            pm.fail(impl.plugin_name, error)
    return flags


def get_tasks() -> dict[str, Task]:
    """Every registered task, by name. Two plugins registering one name is an error."""
    tasks: dict[str, Task] = {}

    def register(task: Task) -> None:
        if task.name in tasks:
            raise HiggsError(f"two plugins register the task '{task.name}'",
                             hint="uninstall one of them (see `higgs plugins list`)")
        tasks[task.name] = task

    get_plugin_manager().hook.register_tasks(register=register)
    return tasks


def plugin_rows() -> list[dict]:
    """One row per loaded plugin: its name, distribution, and the tasks it adds."""
    pm = get_plugin_manager()
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is hookspecs:
            continue
        found: list[str] = []
        for impl in pm.hook.register_tasks.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=lambda task, found=found: found.append(task.name))
        rows.append({
            "name": name,
            "module": getattr(plugin, "__name__", repr(plugin)),
            "distribution": pm.distributions.get(name),
            "tasks": found,
            "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
        })
    return rows
