"""Approving rendered lines without a model: approve, unapprove, and the lines as they stand now.

An approval records, in the lock file, the cache key of the audio the line has now, with digests
of its text and voice (lockfile.py): a render keeps that audio through project-wide changes until
the line's own text or voice changes, or `render --rerender-approved` (edits.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import UsageError
from higgs_cli.project.folder.lockfile import LockEntry, LockFile, text_digest, voice_digest
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.current import Current, current_lines

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import Task


def chosen(cur: Current, refs: Sequence[str], sections: Sequence[str], every: bool) -> list[int]:
    """The lines named by refs, --section ids and --all; UsageError when none is named."""
    if every:
        return list(range(len(cur.planned)))
    found = set(cur.refs.resolve_all(refs))
    for section in sections:
        found.update(cur.refs.section(section))
    if not found:
        raise UsageError("name the lines: REF... (e.g. intro:2), --section ID, or --all")
    return sorted(found)


def approve(project: Project, refs: Sequence[str] = (), *, sections: Sequence[str] = (), every: bool = False,
            tasks: Mapping[str, Task] | None = None, library: Any = None) -> dict:
    """Approve the named lines' current audio; every one must be rendered. Writes the lock file once."""
    cur = current_lines(project, tasks=tasks, library=library)
    indexes = chosen(cur, refs, sections, every)
    unrendered = [cur.refs.ref(i) for i in indexes if cur.keys[i] is None or not cur.store.has(cur.keys[i])]
    if unrendered:
        shown = ", ".join(unrendered[:8]) + (" ..." if len(unrendered) > 8 else "")
        raise UsageError(f"{len(unrendered)} line(s) have no rendered audio with the current settings: {shown}",
                         hint="render them first (`higgs project render PATH --line REF`); nothing was approved")
    with ProjectLayout(project.root).lock(f"project {project.title}"):
        lock = LockFile.of(project)  # read again under the lock
        for i in indexes:
            line, name = cur.planned[i], cur.edits[i].name
            entry = lock.lines.get(name)
            if entry is None or entry.text != text_digest(line):
                entry = LockEntry(text=text_digest(line))
            entry.approved, entry.voice = cur.keys[i], voice_digest(project, line.speaker)
            lock.lines[name] = entry
        lock.save()
    flagged = {cur.refs.ref(i): _flag_kinds(cur, i) for i in indexes if _flag_kinds(cur, i)}
    return {"approved": [cur.refs.ref(i) for i in indexes], "lock_file": str(lock.path), "flagged": flagged}


def _flag_kinds(cur: Current, i: int) -> list[str]:
    """The kinds of the quality guards' findings on line i's current audio (empty: none)."""
    flags = (cur.store.meta(cur.keys[i]) or {}).get("flags") if cur.keys[i] else None
    if not isinstance(flags, list):
        return []
    return [str(f.get("code") or f.get("kind") or "flag") if isinstance(f, dict) else str(f) for f in flags]


def unapprove(project: Project, refs: Sequence[str] = (), *, sections: Sequence[str] = (), every: bool = False,
              tasks: Mapping[str, Task] | None = None, library: Any = None) -> dict:
    """Drop the named lines' approvals (a pick stays)."""
    cur = current_lines(project, tasks=tasks, library=library)
    indexes = chosen(cur, refs, sections, every)
    dropped = []
    with ProjectLayout(project.root).lock(f"project {project.title}"):
        lock = LockFile.of(project)
        for i in indexes:
            entry = lock.lines.get(cur.edits[i].name)
            if entry is not None and entry.approved is not None:
                entry.approved = entry.voice = None
                dropped.append(cur.refs.ref(i))
        if dropped:
            lock.save()
    return {"unapproved": dropped, "lock_file": str(lock.path)}


def lock_path(project: Project) -> Path:
    return LockFile.of(project).path
