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
from higgs_cli.project.edits import LineEdit, apply_approvals, apply_picks
from higgs_cli.project.lockfile import LockFile
from higgs_cli.project.plan import ProjectPlanContext, is_placeholder, plan_sections
from higgs_cli.project.refs import LineRefs
from higgs_cli.project.store import Store, line_key

if TYPE_CHECKING:
    from higgs_cli.plugins.task import Task
    from higgs_cli.project.model import Project


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


def _needs_model(line: PlannedLine) -> bool:
    """Whether the line's prompt holds the planner's stand-in for voice codes not yet encoded."""
    return any(is_placeholder(turn) for turn in line.request.history)


def known_keys(planned: list[PlannedLine], context: list[tuple[int, ...]] | None = None, *, model_id: str,
               codec_id: str) -> list[str | None]:
    """Each line's cache key, or None where it depends on voice codes only the model can make."""
    return [None if _needs_model(line) else line_key(line.request, model_id=model_id, codec_id=codec_id)
            for line in planned]


def current_for(project: Project, ids: tuple[str, str] | None, *, tasks: Mapping[str, Task] | None = None,
                library: Any = None) -> Current:
    """The lines keyed with `ids` (model_id, codec_id), picks and approvals applied."""
    from higgs_cli.storage.cache import open_store  # the shared render cache too, when the project names one

    ctx = ProjectPlanContext(project, codec_id=ids[1] if ids else "none", encode=None, library=library)
    planned = plan_sections(project, ctx, tasks=tasks)
    refs = LineRefs(project, planned)
    lock = LockFile.of(project)
    edits = apply_picks(project, planned, refs, lock)
    store = open_store(project)
    keys = known_keys(planned, model_id=ids[0], codec_id=ids[1]) if ids else [None] * len(planned)
    keys = apply_approvals(project, planned, keys, edits, lock, store)
    return Current(project, planned, refs, lock, edits, keys, store, set(ctx.unresolved))
