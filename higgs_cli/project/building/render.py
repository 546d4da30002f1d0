"""Rendering: plan, generate what the cache lacks, then write the build (assemble.py).

A render holds the project's lock. Lines found in the cache are not generated
again; the rest go to the model in batches, in waves that respect
`context_from` (a line waits for the lines it hears). Each result is cached as
soon as its batch returns, so an interrupted render resumes where it stopped.
Each cached line is mixed in order meanwhile, on a thread of its own (mixing.py);
only when every line exists are the outputs written.

The session may be a `LazySession` (lazy.py): the model then loads only when a
line must be generated or a voice encoded, so a render whose lines are all
cached re-assembles without it. Everything that needs no model is checked first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import FRAME_RATE, RANDOM_WEIGHTS_NOTE, GenerationRequest, GenerationResult, Turn
from higgs_cli.errors import UsageError
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.building.assemble import LineAudio, write_build
from higgs_cli.project.building.generate import CALL_BATCHES, LineReport, PendingLine, generate_missing
from higgs_cli.project.building.guards import LineChecker
from higgs_cli.project.building.mixing import LineMixer
from higgs_cli.project.folder.cache import open_store
from higgs_cli.project.folder.lockfile import LockFile, text_digest
from higgs_cli.project.folder.manifest import is_build
from higgs_cli.project.folder.snapshots import record_snapshot
from higgs_cli.project.folder.state import write_state
from higgs_cli.project.folder.store import CacheEntry, codes_digest, described_voices, line_keys, recipe_parts
from higgs_cli.project.folder.takes import prune_takes
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.edits import LineEdit, apply_approvals, apply_picks, context_changed, refresh_set
from higgs_cli.project.planning.plan import (
    ProjectPlanContext,
    check_render_length,
    global_context,
    plan_project,
    plan_sections,
)
from higgs_cli.project.planning.refs import LineRefs
from higgs_cli.project.reading.length import speech_seconds
from higgs_cli.sessions.identity import ModelIdentity
from higgs_cli.sessions.lazy import LazySession, as_session

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import Task

__all__ = ["CALL_BATCHES", "NullProgress", "RenderProgress", "RenderSummary", "render_project"]



class RenderProgress(Protocol):
    """What a render reports as it goes. Every method is optional (see NullProgress)."""

    def start(self, sections: list[tuple[str, int, int]]) -> None:
        """Once, after planning: (section id, lines, lines already cached) in order."""

    def expect(self, seconds: float) -> None:
        """The seconds of audio this render will generate: estimated from the text before the
        first line, then corrected as each line finishes with its true length."""

    def frames(self, n: int) -> None:
        """As the engine makes them (at each of its host syncs): frames (40 ms each) produced
        across the batch since the last call."""

    def line_done(self, section: str, seconds: float) -> None:
        """A line was generated and cached; `seconds` of audio."""

    def stage(self, message: str) -> None:
        """A step after generation began, e.g. "assembling"."""


class NullProgress:
    def start(self, sections):
        pass

    def expect(self, seconds):
        pass

    def frames(self, n):
        pass

    def line_done(self, section, seconds):
        pass

    def stage(self, message):
        pass


@dataclass
class RenderSummary:
    title: str
    model: str
    model_id: str
    codec_id: str
    is_random: bool
    lines: int
    generated: int  # lines sent to the model in this render
    cached: int  # lines taken from the cache
    duration: float  # seconds of the mastered track
    generated_seconds: float  # seconds of audio the model produced in this render
    generation_time: float  # wall seconds spent in generate()
    outputs: dict[str, Any]  # master, srt, vtt, manifest: paths; stems: list of paths
    unfinished: list[str] = field(default_factory=list)  # lines cut at max_seconds, as refs ("section:N")
    model_loaded: bool = True  # False when every line came from the cache and the model never loaded
    mastering: dict | None = None  # the master's measured figures (MasterReport.to_dict), as in the manifest
    missing: list[str] = field(default_factory=list)  # refs of lines never rendered (a partial render)
    context_lines: list[str] = field(default_factory=list)  # refs generated only because a chosen line hears them
    context_changed: list[str] = field(default_factory=list)  # refs whose context changed since (--refresh-context)
    flagged: int = 0  # lines the quality guards flagged (kept try)
    retried: int = 0  # lines generated more than once
    approved: int = 0  # approved lines
    snapshot: str | None = None  # the id of the snapshot this render recorded

    @property
    def mastering_note(self) -> str | None:
        """Why the master missed its loudness or peak target, with the figures; None when it met them."""
        return (self.mastering or {}).get("note")

    @property
    def realtime_factor(self) -> float | None:
        return self.generated_seconds / self.generation_time if self.generation_time > 0 else None

    def to_dict(self) -> dict:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["realtime_factor"] = self.realtime_factor
        data["outputs"] = {k: [str(p) for p in v] if isinstance(v, list) else str(v) for k, v in self.outputs.items()}
        if self.is_random:
            data["warning"] = RANDOM_WEIGHTS_NOTE
        return data


@dataclass(frozen=True)
class _Done:
    """A line that exists in the cache. Its audio stays on disk until the track is assembled, so
    a render's memory does not grow with the project."""

    codes: np.ndarray
    finished: bool
    meta: dict  # what its cache entry records: heard, digest, flags, tries, seed


def _done(entry: CacheEntry | GenerationResult, meta: dict) -> _Done:
    return _Done(codes=np.asarray(entry.codes, dtype=np.int16), finished=bool(entry.finished), meta=meta)  # as cached


def _heard(line: PlannedLine, deps: tuple[int, ...], planned: list[PlannedLine],
           results: dict[int, _Done]) -> GenerationRequest:
    """The line's request with the audio of its context lines, as they are in the cache now."""
    if not deps:
        return line.request
    heard = tuple(Turn(text=planned[j].request.text, codes=results[j].codes) for j in deps)
    r = line.request
    return GenerationRequest(text=r.text, history=r.history + heard, scene=r.scene, sampling=r.sampling,
                             seed=r.seed, max_frames=r.max_frames, system=r.system)


class _RenderSink:
    """The render's side of the generation loop: a line's request with the audio it hears as the
    cache holds it now; a kept result cached at once, for every line with its key."""

    def __init__(self, planned: list[PlannedLine], context: Sequence[tuple[int, ...]], keys: Sequence[str],
                 same: Mapping[str, list[int]], results: dict[int, _Done], store, progress: RenderProgress,
                 model: ModelIdentity, voices: Sequence[str],
                 on_cached: Callable[[list[int]], None] = lambda lines: None) -> None:
        self.planned, self.context, self.keys, self.same = planned, context, keys, same
        self.results, self.store, self.progress, self.model = results, store, progress, model
        self.voices, self.on_cached = voices, on_cached
        self.generated: set[int] = set()
        self.reports: dict[int, LineReport] = {}

    def request(self, pending: PendingLine) -> GenerationRequest:
        i = pending.index
        return _heard(self.planned[i], self.context[i], self.planned, self.results)

    def done(self, pending: PendingLine, result: GenerationResult, report: LineReport) -> None:
        i = pending.index
        heard = [codes_digest(self.results[j].codes) for j in self.context[i]]
        recipe = recipe_parts(self.planned[i], model_id=self.model.model_id, codec_id=self.model.codec_id,
                              voices=self.voices)
        written = self.store.put(self.keys[i], result, meta={"heard": heard, "flags": report.flags,
                                                             "tries": report.tries, "seed": report.seed,
                                                             "recipe": recipe})  # status names what changes
        entry = _done(result, written)
        for j in self.same[self.keys[i]]:
            self.results[j] = entry
            self.generated.add(j)
            self.reports[j] = report
            self.progress.line_done(self.planned[j].section, result.seconds)
        self.on_cached(self.same[self.keys[i]])  # the mixer may take them now


def render_project(project: Project, session: Any, *, out_dir: str | Path | None = None,
                   progress: RenderProgress | None = None, force: bool = False,
                   batch_size: int = DEFAULT_BATCH_SIZE, library: Any = None, model_name: str | None = None,
                   tasks: Mapping[str, Task] | None = None, sections: Sequence[str] = (),
                   lines: Sequence[str] = (), refresh_context: bool = False,
                   rerender_approved: bool = False, device: str | None = None) -> RenderSummary:
    """Render `project` with `session`: a ModelSession (or anything with its interface), a
    LazySession, or a zero-argument function that returns a session (called only if needed).
    `tasks` is the task registry the sections are planned with (the CLI passes the installed one).

    `sections` (ids) and `lines` (refs, see refs.py) limit what is generated (a partial render):
    the rest comes from the cache, and lines never rendered are left out and reported.
    `refresh_context` generates again the lines whose context changed since they were rendered;
    `rerender_approved` lets approved lines follow project-wide changes (edits.py)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    progress = progress or NullProgress()
    layout = ProjectLayout(project.root)
    build, custom = layout.build_dir(out_dir)
    layout.check_folders(build, custom=custom, is_render=is_build)
    _check_format(project)
    lock = LockFile.of(project)  # a damaged lock file is refused before any model loads
    if sections or lines:  # so are refs to lines that do not exist: planned without a model to check them
        _wanted(LineRefs(project, plan_sections(project, ProjectPlanContext(project, codec_id="none"), tasks=tasks)),
                sections, lines)
    session = as_session(session)
    with layout.writing(f"project {project.title}", build):
        store = open_store(project)  # the project's cache, read and written through to a shared one if set
        # encodes voices (loading the model) only if neither cache has their codes
        planned = plan_project(project, session, library, tasks=tasks, store=store)
        if not planned:
            raise UsageError(f"{project.file}: the project has no lines to render")
        check_render_length(project, planned)
        refs = LineRefs(project, planned)
        wanted = _wanted(refs, sections, lines)
        edits = apply_picks(project, planned, refs, lock)
        model = ModelIdentity.of(session, model_name)
        context = global_context(planned)
        keys = apply_approvals(project, planned, line_keys(planned, model_id=model.model_id,
                                                            codec_id=model.codec_id),
                               edits, lock, store, rerender_approved=rerender_approved)
        kept = [edit.kept for edit in edits]
        prune_takes(layout, {refs.name(i): text_digest(line) for i, line in enumerate(planned)})

        same: dict[str, list[int]] = {}  # identical lines (same key) are generated once
        for i, key in enumerate(keys):
            same.setdefault(key, []).append(i)
        results: dict[int, _Done] = {}
        for key, group in same.items():
            redo = force and not all(kept[i] for i in group) and (wanted is None or any(i in wanted for i in group))
            if not redo and (entry := store.get(key)) is not None:
                results.update(dict.fromkeys(group, _done(entry, entry.meta)))
        if refresh_context:
            absent = {i for i in range(len(planned)) if i not in results}
            for i in refresh_set(keys, context, context_changed(keys, context, store, _metas(keys, results)), kept,
                                 absent):
                if wanted is None or i in wanted:
                    results.pop(i, None)
        cached = set(results)
        todo = set(range(len(planned))) if wanted is None else _with_context(wanted, context, results)
        # one line of each group of identical lines that is to be generated (in a partial render, a chosen one)
        pending = [next(i for i in group if i in todo) for group in same.values()
                   if group[0] not in results and any(i in todo for i in group)]
        if pending and isinstance(session, LazySession):
            session.load()  # now, not in the generation timing; a model that fails to load changes nothing
        write_state(layout, build, model=model.name, model_id=model.model_id, codec_id=model.codec_id)
        order = list(dict.fromkeys(p.section for p in planned))
        progress.start([(s, sum(p.section == s for p in planned),
                         sum(planned[i].section == s for i in cached)) for s in order])

        # the lines the build will hold, mixed in order while the rest are generated (mixing.py)
        mixer = LineMixer(project, planned, keys, sorted({*results, *(j for i in pending for j in same[keys[i]])}),
                          store, folder=layout.higgs_dir)
        with mixer:  # closed (its threads joined) before the lock is released, on Ctrl-C too
            mixer.ready(results)
            mixer.start()
            sink = _RenderSink(planned, context, keys, same, results, store, progress, model,
                               described_voices(project), on_cached=mixer.ready)
            of_key = {keys[i]: i for i in pending}  # the line generated for each key
            jobs = [PendingLine(i, planned[i], retries=planned[i].retries or 0,
                                after=tuple(of_key.get(keys[j], j) for j in context[i] if j not in results),
                                seconds=speech_seconds(planned[i].display_text,
                                                       planned[i].request.max_frames / FRAME_RATE))
                    for i in pending]
            stats = generate_missing(session, jobs, sink, batch_size=batch_size, progress=progress,
                                     checks=partial(LineChecker, project.guards, root=project.root, session=session,
                                                    device=device))
            generated, reports = sink.generated, sink.reports

            changed = [c and not k for c, k in zip(context_changed(keys, context, store, _metas(keys, results)),
                                                   kept, strict=True)]
            progress.stage("assembling")
            audio = [_line_audio(i, results, generated, reports, edits) for i in range(len(planned))]
            outputs, manifest = write_build(project, build, planned, keys, audio, store, model, mixer=mixer)
        flags = [line.flags for line in manifest.lines]
        made = len({keys[i] for i in generated})  # identical lines were generated once
        snapshot = record_snapshot(layout, build, manifest, outputs, generated=made)
        return RenderSummary(
            title=project.title, model=model.name, model_id=model.model_id, codec_id=model.codec_id,
            is_random=model.is_random, lines=len(planned), generated=made,
            cached=len(cached), duration=manifest.duration, generated_seconds=stats.seconds,
            generation_time=stats.spent, outputs=outputs,
            unfinished=[refs.ref(i) for i, m in enumerate(manifest.lines) if not m.finished and not m.missing],
            model_loaded=not isinstance(session, LazySession) or session.loaded, mastering=manifest.mastering,
            missing=[refs.ref(i) for i, line in enumerate(audio) if line.missing],
            context_lines=sorted((refs.ref(i) for i in generated if wanted is not None and i not in wanted),
                                 key=lambda r: refs.refs.index(r)),
            context_changed=[refs.ref(i) for i, c in enumerate(changed) if c],
            flagged=sum(bool(f) for f in flags), retried=sum((line.tries or 1) > 1 for line in manifest.lines),
            approved=sum(edit.approved for edit in edits), snapshot=snapshot,
        )


def _wanted(refs: LineRefs, sections: Sequence[str], lines: Sequence[str]) -> set[int] | None:
    """The lines a partial render generates (None: all), every ref checked before anything runs."""
    if not sections and not lines:
        return None
    wanted = {i for section in sections for i in refs.section(section)}
    return wanted | set(refs.resolve_all(lines))


def _with_context(wanted: set[int], context: Sequence[tuple[int, ...]], results: Mapping[int, _Done]) -> set[int]:
    """`wanted` plus the uncached lines they hear (and those hear), which must be generated first."""
    need = set(wanted)
    for i in range(max(wanted, default=-1), -1, -1):  # context lines come earlier
        if i in need:
            need.update(j for j in context[i] if j not in results)
    return need


def _metas(keys: Sequence[str], results: Mapping[int, _Done]) -> dict[str, dict]:
    """The meta of every entry the render holds, by key (read once, with the entry)."""
    return {keys[i]: done.meta for i, done in results.items()}


def _line_audio(i: int, results: Mapping[int, _Done], generated: set[int], reports: Mapping[int, LineReport],
                edits: list[LineEdit]) -> LineAudio:
    info = edits[i].info()
    if i not in results:
        return LineAudio(frames=0, finished=True, generated=False, missing=True, info=info)
    if i in reports:
        info.update(flags=reports[i].flags, tries=reports[i].tries)
    else:  # from the cache: what its render recorded
        meta = results[i].meta
        info.update(flags=meta.get("flags") if isinstance(meta.get("flags"), list) else [],
                    tries=meta.get("tries") if isinstance(meta.get("tries"), int) else 1)
    return LineAudio(frames=int(results[i].codes.shape[1]), finished=results[i].finished, generated=i in generated,
                     info=info)


def _check_format(project: Project) -> None:
    """Refuse, before any model loads, delivery settings this installation cannot write (format, cover)."""
    from higgs_cli.project.building.delivery import check_delivery

    check_delivery(project)
