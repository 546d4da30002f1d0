"""Projects: a folder with a `project.yaml`, read, planned, rendered and edited.

The rooms, each importing only the ones listed before it (tests/architecture/test_layers.py checks it):

    layout.py   every path under a project folder (imports no room)
    reading/    project.yaml into the project model: safe YAML, schema, values, lexicon, length
    folder/     what lies on disk: line store, state, manifest, lock file, snapshots, names, buckets
    planning/   lines into requests, line references, picks and approvals applied, lines as they stand
    building/   the render: generation, guards, mastering, assembly, delivery, review page
    commands/   one module per other command: new, status, clean, takes, approvals, check, import

This module is the face the CLI imports. Names resolve on first use (plain imports
in `_module`, no dynamic import), so that a command imports only the rooms it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_FACE = {
    "ProjectLayout": "layout",
    "find_project_file": "reading.load", "load_project": "reading.load",
    "unused_entry_warnings": "reading.lexicon",
    "LockFile": "folder.lockfile",
    "list_snapshots": "folder.snapshots", "restore_snapshot": "folder.snapshots",
    "prepare_project": "folder.place", "prepare_render": "folder.place",
    "published_url": "folder.publish",
    "check_library_voices": "planning.plan", "library_voice_warnings": "planning.plan",
    "render_project": "building.render", "RenderSummary": "building.render", "NullProgress": "building.render",
    "check_delivery": "building.delivery",
    "TEMPLATES": "commands.new", "new_project": "commands.new",
    "project_status": "commands.status", "line_reasons": "commands.status", "clean_project": "commands.clean",
    "list_takes": "commands.takes", "make_takes": "commands.takes", "pick": "commands.takes",
    "unpick": "commands.takes",
    "approve": "commands.approvals", "unapprove": "commands.approvals",
    "check_build": "commands.check",
    "import_project": "commands.importers",
}

__all__ = ["LockFile", "NullProgress", "ProjectLayout", "RenderSummary", "TEMPLATES", "approve", "check_build",
           "check_delivery", "check_library_voices", "clean_project", "find_project_file", "import_project",
           "library_voice_warnings", "line_reasons", "list_snapshots", "list_takes", "load_project", "make_takes",
           "new_project", "pick", "prepare_project", "prepare_render", "project_status", "published_url",
           "render_project", "restore_snapshot", "unapprove", "unpick", "unused_entry_warnings"]  # the names of _FACE


def _module(where: str) -> Any:
    """The module `where` (a path under this package), imported by a plain import statement."""
    if where == "building.delivery":
        from higgs_cli.project.building import delivery as module
    elif where == "building.render":
        from higgs_cli.project.building import render as module
    elif where == "commands.approvals":
        from higgs_cli.project.commands import approvals as module
    elif where == "commands.check":
        from higgs_cli.project.commands import check as module
    elif where == "commands.clean":
        from higgs_cli.project.commands import clean as module
    elif where == "commands.importers":
        from higgs_cli.project.commands import importers as module
    elif where == "commands.new":
        from higgs_cli.project.commands import new as module
    elif where == "commands.status":
        from higgs_cli.project.commands import status as module
    elif where == "commands.takes":
        from higgs_cli.project.commands import takes as module
    elif where == "folder.lockfile":
        from higgs_cli.project.folder import lockfile as module
    elif where == "folder.place":
        from higgs_cli.project.folder import place as module
    elif where == "folder.publish":
        from higgs_cli.project.folder import publish as module
    elif where == "folder.snapshots":
        from higgs_cli.project.folder import snapshots as module
    elif where == "layout":
        from higgs_cli.project import layout as module
    elif where == "planning.plan":
        from higgs_cli.project.planning import plan as module
    elif where == "reading.lexicon":
        from higgs_cli.project.reading import lexicon as module
    elif where == "reading.load":
        from higgs_cli.project.reading import load as module
    else:
        raise AssertionError(where)
    return module


def __getattr__(name: str) -> Any:
    """A face name, from its module (PEP 562); not cached here, so a name patched in its module is seen."""
    where = _FACE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(_module(where), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_FACE))


if TYPE_CHECKING:
    from higgs_cli.project.building.delivery import check_delivery
    from higgs_cli.project.building.render import NullProgress, RenderSummary, render_project
    from higgs_cli.project.commands.approvals import approve, unapprove
    from higgs_cli.project.commands.check import check_build
    from higgs_cli.project.commands.clean import clean_project
    from higgs_cli.project.commands.importers import import_project
    from higgs_cli.project.commands.new import TEMPLATES, new_project
    from higgs_cli.project.commands.status import line_reasons, project_status
    from higgs_cli.project.commands.takes import list_takes, make_takes, pick, unpick
    from higgs_cli.project.folder.lockfile import LockFile
    from higgs_cli.project.folder.place import prepare_project, prepare_render
    from higgs_cli.project.folder.publish import published_url
    from higgs_cli.project.folder.snapshots import list_snapshots, restore_snapshot
    from higgs_cli.project.layout import ProjectLayout
    from higgs_cli.project.planning.plan import check_library_voices, library_voice_warnings
    from higgs_cli.project.reading.lexicon import unused_entry_warnings
    from higgs_cli.project.reading.load import find_project_file, load_project
