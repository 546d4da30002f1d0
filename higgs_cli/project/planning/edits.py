"""What the producer's edits make of the planned lines: picks and approvals from the lock file,
and which lines' context changed since they were rendered. Shared by render and status, so both
judge a line the same way.

A pick keeps its take's audio, as an approval does: while the take's cache entry exists, it is
the line's audio whatever changed project-wide (defaults, scene, lexicon, voice, model), until the
line's text changes or the pick is dropped. The line's seed is the take's too, so where the entry
is gone (a fresh clone, a cleaned cache) the line is generated with that seed and the current
settings (the same audio when nothing else changed). An approval whose line kept its text and
voice keeps the approved cache entry, whatever changed project-wide, unless `rerender_approved`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from higgs_cli.project.folder.lockfile import LockFile, text_digest, voice_digest
from higgs_cli.project.folder.store import Store
from higgs_cli.project.planning.refs import LineRefs

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import PlannedLine


@dataclass
class LineEdit:
    """One planned line as the lock file and the cache see it."""

    ref: str  # SECTION:N
    name: str  # its lock file name
    id: str | None
    approved: bool = False  # approved, and its text and voice are as they were
    changed_since_approval: bool = False  # approved, then its text or voice changed: rendered anew
    take: int | None = None  # the picked take, when one applies
    picked: str | None = None  # the picked take's cache key (the lock file's `picked`)
    take_kept: bool = False  # its audio is the picked take's entry (still cached)
    kept: bool = False  # its audio is a kept entry, the approved or picked one (not its current key's)

    def info(self) -> dict:
        """What the manifest records of it (LineAudio.info)."""
        return {"ref": self.ref, "id": self.id, "approved": self.approved, "take": self.take}


def apply_picks(project: Project, planned: list[PlannedLine], refs: LineRefs, lock: LockFile) -> list[LineEdit]:
    """Each line's LineEdit; a line with a pick that still applies gets its take's seed (in place)."""
    edits = []
    for i, line in enumerate(planned):
        name = refs.name(i)
        edit = LineEdit(ref=refs.ref(i), name=name, id=refs.ids[i])
        entry = lock.lines.get(name)
        if entry is not None and entry.text == text_digest(line) and entry.seed is not None:
            line.request = replace(line.request, seed=entry.seed)
            edit.take, edit.picked = entry.take, entry.picked
        edits.append(edit)
    return edits


def apply_approvals(project: Project, planned: Sequence[PlannedLine], keys: list[str | None], edits: list[LineEdit],
                    lock: LockFile, store: Store, *, rerender_approved: bool = False) -> list[str | None]:
    """The keys with the kept audio in place of each line's current key: a picked take's entry while it
    is cached, then an approved line's approved entry (where still cached and not `rerender_approved`);
    marks the edits."""
    keys = list(keys)
    for i, (line, edit) in enumerate(zip(planned, edits, strict=True)):
        if edit.picked is not None and store.has(edit.picked):  # through every change but its own text's
            keys[i], edit.kept, edit.take_kept = edit.picked, True, True
        entry = lock.lines.get(edit.name)
        if entry is None or entry.approved is None:
            continue
        if entry.text != text_digest(line) or entry.voice != voice_digest(project, line.speaker):
            edit.changed_since_approval = True
            continue
        edit.approved = True
        if not rerender_approved and store.has(entry.approved):  # kept, even where its key is unchanged:
            keys[i], edit.kept = entry.approved, True  # --force and --refresh-context leave it too
    return keys


def context_changed(keys: Sequence[str | None], context: Sequence[tuple[int, ...]], store: Store,
                    known: Mapping[str, dict] | None = None) -> list[bool]:
    """Whether each cached line heard other audio than its context lines' entries hold now.

    `known` holds entries' meta already read (by key), so they are not read again from `store`.
    A line that shares its key with an earlier line is a copy of that one's audio, so it is never
    marked (its own context is not what its entry heard, and re-rendering would not change that)."""
    metas: dict[str, dict | None] = dict(known or {})

    def meta(key: str | None) -> dict | None:
        if key is None:
            return None
        if key not in metas:
            metas[key] = store.meta(key)
        return metas[key]

    first: dict[str | None, int] = {}
    changed = []
    for i, (key, deps) in enumerate(zip(keys, context, strict=True)):
        first.setdefault(key, i)
        own = meta(key) if deps and first[key] == i else None
        if own is None or "heard" not in own:
            changed.append(False)
            continue
        now = [(meta(keys[j]) or {}).get("digest") for j in deps]
        changed.append(None not in now and now != own["heard"])
    return changed


def refresh_set(keys: Sequence[str], context: Sequence[tuple[int, ...]], changed: Sequence[bool],
                keep: Sequence[bool], absent: set[int] = frozenset()) -> set[int]:
    """The lines `render --refresh-context` generates again: those whose context changed, and every
    line that hears one of them or an `absent` line (about to be generated: it will hear new audio),
    to a fixed point; never a `keep` line."""
    redo: set[int] = set()
    for i, deps in enumerate(context):  # context lines come earlier, so one pass reaches the fixed point
        if not keep[i] and (changed[i] or any(j in redo or j in absent for j in deps)):
            redo.add(i)
    return redo
