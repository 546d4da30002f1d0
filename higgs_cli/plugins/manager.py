"""The one plugin manager. Built-in and third-party plugins load the same way:
through the `higgs.plugins` entry-point group."""

from __future__ import annotations

import functools

import pluggy

from higgs_cli.errors import HiggsError
from higgs_cli.plugins import hookspecs
from higgs_cli.plugins.task import Task

ENTRY_POINT_GROUP = "higgs.plugins"


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """Build the manager once per process: hookspecs, entry points, then a strict check."""
    pm = pluggy.PluginManager("higgs")
    pm.add_hookspecs(hookspecs)
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        raise HiggsError(f"a plugin is broken: {error}",
                         hint="update or uninstall the plugin named above") from None
    except ImportError as error:
        raise HiggsError(f"a plugin in the '{ENTRY_POINT_GROUP}' entry-point group failed to import: {error}",
                         hint="reinstall it, or uninstall it with pip") from None
    return pm


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
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is hookspecs:
            continue
        found: list[str] = []
        impl = getattr(plugin, "register_tasks", None)
        if impl is not None:
            impl(register=lambda task, found=found: found.append(task.name))
        dist = dists.get(id(plugin))
        rows.append({
            "name": name,
            "module": getattr(plugin, "__name__", repr(plugin)),
            "distribution": f"{dist.project_name} {dist.version}" if dist else None,
            "tasks": found,
            "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
        })
    return rows
