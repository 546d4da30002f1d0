"""`project status`: what would a render do? Answered without a model.

Lines are keyed with the model and codec fingerprints of the last render (or
those given), and compared with the cache and the build's manifest. A line
whose key needs voice codes that are not encoded yet (a voice imported again,
another codec) is "unknown": only the model can tell whether it is cached.
A line the next render generates says why (`reasons`: text, lexicon, voice,
scene, sampling, seed, model, ...; planning/reasons.py), from what the last
build's entry for it recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.project.folder.manifest import assembly_digest, read_manifest, settings_unchanged
from higgs_cli.project.folder.names import section_numbers
from higgs_cli.project.folder.state import read_state
from higgs_cli.project.folder.store import described_voices
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.current import current_for, needs_model
from higgs_cli.project.planning.edits import context_changed
from higgs_cli.project.planning.plan import global_context
from higgs_cli.project.planning.reasons import REASONS, manifest_names, take_changes, why_generated

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import Task

RENDERED, STALE, MISSING, UNKNOWN = "rendered", "stale", "missing", "unknown"
STATES = (RENDERED, STALE, MISSING, UNKNOWN)


@dataclass
class LineState:
    section: str
    index: int  # position within the section's planned lines
    speaker: str | None
    text: str
    key: str | None  # None when unknown
    state: str  # rendered | stale | missing | unknown
    ref: str = ""  # SECTION:N, as every command names it
    id: str | None = None  # the line's own id:
    approved: bool = False
    changed_since_approval: bool = False  # approved, then its text or voice changed
    context_changed: bool = False  # it heard other audio than its context lines have now
    take: int | None = None  # the picked take
    flags: list[dict] = field(default_factory=list)  # the quality guards' findings on its cached audio
    tries: int = 1
    reasons: list[str] = field(default_factory=list)  # why a render generates it again (planning/reasons.py)
    take_kept: bool = False  # its audio is its picked take's (kept through project-wide changes)
    pick_changes: list[str] | None = None  # a kept pick made under other settings: which ([]: none; None: unknown)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ProjectStatus:
    """Line states plus what they were judged against. Iterates like its `lines`.

    missing: no cache entry (a render generates it); stale: cached but not in
    the current build outputs, or the outputs are older than its entry (a
    render only re-assembles); rendered: in the outputs, which are current;
    unknown: its key needs voice codes only the model can make (see
    `unresolved_voices`; a render encodes them, then generates what is missing).
    `settings_current` is False when the title, tags, a pause, a section title or
    an output setting changed since the build (not a line: lines say why in
    their `reasons`): a render re-assembles it.
    """

    lines: list[LineState]
    model_id: str | None
    codec_id: str | None
    build_dir: Path
    outputs_current: bool  # the build holds exactly the current script, made as it would be now
    unresolved_voices: list[str] = field(default_factory=list)
    settings_current: bool = True

    def __iter__(self):
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i):
        return self.lines[i]

    def counts(self) -> dict[str, int]:
        """Lines in each state; "unknown" only when there are some."""
        counts = {s: sum(line.state == s for line in self.lines) for s in STATES}
        if not counts[UNKNOWN]:
            del counts[UNKNOWN]
        return counts

    def marks(self) -> dict[str, int]:
        """How many lines are approved, changed since approval, hear changed context, are flagged."""
        return {"approved": sum(line.approved for line in self.lines),
                "changed_since_approval": sum(line.changed_since_approval for line in self.lines),
                "context_changed": sum(line.context_changed for line in self.lines),
                "flagged": sum(bool(line.flags) for line in self.lines)}

    def reasons(self) -> dict[str, int]:
        """How many lines name each reason (a line may name several), in REASONS order."""
        counts = {r: sum(r in line.reasons for line in self.lines) for r in REASONS}
        return {r: n for r, n in counts.items() if n}

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "codec_id": self.codec_id, "build_dir": str(self.build_dir),
                "outputs_current": self.outputs_current, "settings_current": self.settings_current,
                "counts": self.counts(), **self.marks(), "reasons": self.reasons(),
                "unresolved_voices": self.unresolved_voices,
                "lines": [s.to_dict() for s in self.lines]}


def _ids(session_ids: Any) -> tuple[str, str] | None:
    if session_ids is None:
        return None
    if isinstance(session_ids, dict):
        return session_ids["model_id"], session_ids["codec_id"]
    if isinstance(session_ids, Sequence) and not isinstance(session_ids, str):
        return str(session_ids[0]), str(session_ids[1])
    return session_ids.model_id, session_ids.codec_id


def project_status(project: Project, session_ids: Any = None, *, out_dir: str | Path | None = None,
                   library: Any = None, tasks: Mapping[str, Task] | None = None,
                   default_build: str | Path | None = None) -> ProjectStatus:
    """The state of every line, judged without a model.

    `session_ids` (a session, a {"model_id", "codec_id"} dict or a pair) picks the
    fingerprints to key lines with; by default those of the last render. `tasks` is
    the task registry the sections are planned with (the CLI passes the installed one).
    The build judged is `out_dir`, else the last render's, else `default_build` (a project
    read from a bucket: its staging folder), else the project's build/.
    """
    layout = ProjectLayout(project.root)
    last = read_state(layout)
    fallback = Path(default_build) if default_build is not None else layout.default_build
    build = Path(out_dir) if out_dir is not None else (last.build(layout) if last else fallback)
    manifest = read_manifest(build)
    ids = _ids(session_ids)
    if ids is None and last is not None:
        ids = (last.model_id, last.codec_id)
    if ids is None and manifest is not None and manifest.model_id and manifest.codec_id:
        ids = (manifest.model_id, manifest.codec_id)
    cur = current_for(project, ids, tasks=tasks, library=library)
    planned, keys, edits, store = cur.planned, cur.keys, cur.edits, cur.store
    if (prefetch := getattr(store, "prefetch", None)) is not None:  # a shared cache: one listing, not one ask a line
        prefetch(keys)
    context = global_context(planned)
    changed = [c and not e.kept for c, e in zip(context_changed(keys, context, store), edits, strict=True)]

    built_keys: list[str | None] = []
    built_at = None
    if manifest is not None and ids and (manifest.model_id, manifest.codec_id) == tuple(ids):
        master = manifest.outputs.get("master")
        if isinstance(master, str) and (build / master).is_file():
            built_keys = manifest.keys
            built_at = (build / master).stat().st_mtime
    built = set(built_keys)
    names = manifest_names(manifest)
    voices = described_voices(project)
    built_ids = (manifest.model_id, manifest.codec_id) if manifest is not None else None

    states = []
    for i, (line, key, n) in enumerate(zip(planned, keys, section_numbers(planned), strict=True)):
        mtime = store.mtime(key) if key else None
        if key is None and ids and cur.unresolved:
            state = UNKNOWN
        elif mtime is None:
            state = MISSING
        elif key in built and built_at is not None and built_at >= mtime:
            state = RENDERED
        else:
            state = STALE
        meta = (store.meta(key) or {}) if mtime is not None else {}
        edit = edits[i]
        if state == MISSING:
            reasons = why_generated(line, key, names.get(edit.name), store, ids, built_ids, voices) if key and ids \
                else ["new"]
        else:
            reasons = ["context"] if changed[i] else []
        pick_changes = None
        if edit.take_kept and not needs_model(line):
            pick_changes = take_changes(line, line.request.seed, edit.picked, store, ids, voices)
        states.append(LineState(line.section, n, line.speaker, line.display_text, key, state, ref=edit.ref,
                                id=edit.id, approved=edit.approved,
                                changed_since_approval=edit.changed_since_approval, context_changed=changed[i],
                                take=edit.take, flags=meta["flags"] if isinstance(meta.get("flags"), list) else [],
                                tries=meta["tries"] if isinstance(meta.get("tries"), int) else 1, reasons=reasons,
                                take_kept=edit.take_kept, pick_changes=pick_changes))
    # Current: every line in the build, as it would be assembled now. The settings (not the lines) changed
    # when the build's digest, made again from its own lines with today's settings, differs.
    now = assembly_digest(project, planned, keys) if None not in keys else None
    current = (bool(states) and all(s.state == RENDERED for s in states) and built_keys == keys
               and manifest.assembly == now)
    settings = settings_unchanged(project, planned, manifest) if built_keys else None
    return ProjectStatus(states, ids[0] if ids else None, ids[1] if ids else None, build, current,
                         sorted(cur.unresolved), settings_current=settings is not False)


def line_reasons(project: Project, *, tasks: Mapping[str, Task] | None = None, library: Any = None,
                 out_dir: str | Path | None = None) -> dict[str, dict]:
    """Each line by ref: {state, reasons (why the next render generates it again; ["context"] for a
    cached line `--refresh-context` would redo; [] for none), take, take_kept, pick_changes}. Loads no model."""
    return {line.ref: {"state": line.state, "reasons": line.reasons, "take": line.take, "take_kept": line.take_kept,
                       "pick_changes": line.pick_changes}
            for line in project_status(project, tasks=tasks, library=library, out_dir=out_dir)}
