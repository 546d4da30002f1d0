"""The project's lines as they stand now, judged without a model: what `status`, `approve` and
`unapprove` all start from.

Lines are planned with the voice codes already cached (no encoder), keyed with the model and
codec fingerprints given (those of the last render, normally), then the lock file's picks and
approvals are applied (edits.py). A key is None where only the model can tell it: the line's
voice codes are not encoded yet (`unresolved` names those speakers), or no fingerprints are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.folder.lockfile import LockFile
from higgs_cli.project.folder.manifest import read_manifest
from higgs_cli.project.folder.state import read_state
from higgs_cli.project.folder.store import Store, line_key
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.edits import LineEdit, apply_approvals, apply_picks
from higgs_cli.project.planning.plan import ProjectPlanContext, is_placeholder, plan_sections
from higgs_cli.project.planning.refs import LineRefs

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import Task


@dataclass
class Current:
    """The project's lines as a render with the fingerprints `ids` would see them."""

    project: Project
    planned: list[PlannedLine]
    refs: LineRefs
    lock: LockFile
    edits: list[LineEdit]
    keys: list[str | None]  # None: no fingerprints, or voice codes only the model can make
    store: Store
    unresolved: set[str] = field(default_factory=set)  # speakers whose codes need the model
    ids: tuple[str, str] | None = None  # the (model_id, codec_id) the keys were made with


def needs_model(line: PlannedLine) -> bool:
    """Whether the line's prompt holds the planner's stand-in for voice codes not yet encoded."""
    return any(is_placeholder(turn) for turn in line.request.history)


def known_keys(planned: list[PlannedLine], context: list[tuple[int, ...]] | None = None, *, model_id: str,
               codec_id: str) -> list[str | None]:
    """Each line's cache key, or None where it depends on voice codes only the model can make."""
    return [None if needs_model(line) else line_key(line.request, model_id=model_id, codec_id=codec_id)
            for line in planned]


def current_for(project: Project, ids: tuple[str, str] | None, *, tasks: Mapping[str, Task] | None = None,
                library: Any = None) -> Current:
    """The lines keyed with `ids` (model_id, codec_id), picks and approvals applied."""
    from higgs_cli.project.folder.cache import open_store  # the shared render cache too, when the project names one

    ctx = ProjectPlanContext(project, codec_id=ids[1] if ids else "none", encode=None, library=library)
    planned = plan_sections(project, ctx, tasks=tasks)
    refs = LineRefs(project, planned)
    lock = LockFile.of(project)
    edits = apply_picks(project, planned, refs, lock)
    store = open_store(project)
    keys = known_keys(planned, model_id=ids[0], codec_id=ids[1]) if ids else [None] * len(planned)
    keys = apply_approvals(project, planned, keys, edits, lock, store)
    return Current(project, planned, refs, lock, edits, keys, store, set(ctx.unresolved),
                   (str(ids[0]), str(ids[1])) if ids else None)


def current_lines(project: Project, *, tasks: Mapping[str, Task] | None = None, library: Any = None) -> Current:
    """The lines as they stand now, keyed with the fingerprints of the last render (its state, else its manifest)."""
    layout = ProjectLayout(project.root)
    last = read_state(layout)
    ids = (last.model_id, last.codec_id) if last is not None else None
    if ids is None:
        manifest = read_manifest(layout.default_build)
        ids = (manifest.model_id, manifest.codec_id) if manifest is not None and manifest.codec_id else None
    return current_for(project, ids, tasks=tasks, library=library)
