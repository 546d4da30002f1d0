"""Rendering: plan, generate what the cache lacks, then write the build (assemble.py).

A render holds the project's lock. Lines found in the cache are not generated
again; the rest go to the model in batches, in waves that respect
`context_from` (a line waits for the lines it hears). Each result is cached as
soon as its batch returns, so an interrupted render resumes where it stopped.
Only when every line exists are the outputs written.

The session may be a `LazySession` (lazy.py): the model then loads only when a
line must be generated or a voice encoded, so a render whose lines are all
cached re-assembles without it. Everything that needs no model is checked first.

Status and clean live in status.py and clean.py; this module re-exports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import FRAME_RATE, RANDOM_WEIGHTS_NOTE, GenerationRequest, GenerationResult, Turn
from higgs_cli.errors import UsageError
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.assemble import LineAudio, write_build
from higgs_cli.project.clean import clean_project
from higgs_cli.project.generate import CALL_BATCHES, LineReport, generate_missing
from higgs_cli.project.layout import MANIFEST, ProjectLayout
from higgs_cli.project.lazy import LazySession, ModelIdentity, as_session
from higgs_cli.project.length import speech_seconds
from higgs_cli.project.names import safe_name, slugify
from higgs_cli.project.plan import check_render_length, global_context, plan_project
from higgs_cli.project.state import write_state
from higgs_cli.project.status import MISSING, RENDERED, STALE, UNKNOWN, LineState, ProjectStatus, project_status
from higgs_cli.project.store import CacheEntry, Store, line_keys

if TYPE_CHECKING:
    from higgs_cli.plugins.task import Task
    from higgs_cli.project.model import Project

__all__ = ["CALL_BATCHES", "MANIFEST", "MISSING", "RANDOM_NOTE", "RENDERED", "STALE", "UNKNOWN", "LazySession",
           "LineState", "ModelIdentity", "NullProgress", "ProjectStatus", "RenderProgress", "RenderSummary",
           "clean_project", "project_status", "render_project", "safe_name", "slugify"]

RANDOM_NOTE = RANDOM_WEIGHTS_NOTE  # the one wording, under the name callers know
_keys = line_keys  # the name tests knew


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
    unfinished: list[str] = field(default_factory=list)  # lines cut at max_seconds, "section #n" counted from 1
    model_loaded: bool = True  # False when every line came from the cache and the model never loaded
    mastering: dict | None = None  # the master's measured figures (MasterReport.to_dict), as in the manifest

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
            data["warning"] = RANDOM_NOTE
        return data


@dataclass(frozen=True)
class _Done:
    """A line that exists in the cache. Its audio stays on disk until the track is assembled, so
    a render's memory does not grow with the project."""

    codes: np.ndarray
    finished: bool


def _done(entry: CacheEntry | GenerationResult) -> _Done:
    return _Done(codes=np.asarray(entry.codes, dtype=np.int16), finished=bool(entry.finished))  # as cached


def _with_context(line: PlannedLine, deps: tuple[int, ...], planned: list[PlannedLine],
                  results: dict[int, _Done]) -> GenerationRequest:
    if not deps:
        return line.request
    heard = tuple(Turn(text=planned[j].request.text, codes=results[j].codes) for j in deps)
    r = line.request
    return GenerationRequest(text=r.text, history=r.history + heard, scene=r.scene, sampling=r.sampling,
                             seed=r.seed, max_frames=r.max_frames, system=r.system)


def render_project(project: Project, session: Any, *, out_dir: str | Path | None = None,
                   progress: RenderProgress | None = None, force: bool = False,
                   batch_size: int = DEFAULT_BATCH_SIZE, library: Any = None, model_name: str | None = None,
                   tasks: Mapping[str, Task] | None = None) -> RenderSummary:
    """Render `project` with `session`: a ModelSession (or anything with its interface), a
    LazySession, or a zero-argument function that returns a session (called only if needed).
    `tasks` is the task registry the sections are planned with (the CLI passes the installed one)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    progress = progress or NullProgress()
    layout = ProjectLayout(project.root)
    build, custom = layout.build_dir(out_dir)
    layout.check_folders(build, custom=custom)
    _check_format(project)
    session = as_session(session)
    with layout.lock(f"project {project.title}"):
        layout.sweep(build)
        # encodes voices (loading the model) only if needed
        planned = plan_project(project, session, library, tasks=tasks)
        if not planned:
            raise UsageError(f"{project.file}: the project has no lines to render")
        check_render_length(project, planned)
        model = ModelIdentity.of(session, model_name)
        context = global_context(planned)
        keys = line_keys(planned, context, model_id=model.model_id, codec_id=model.codec_id)
        store = Store(project.root)

        same: dict[str, list[int]] = {}  # identical lines (same key) are generated once
        for i, key in enumerate(keys):
            same.setdefault(key, []).append(i)
        results: dict[int, _Done] = {}
        if not force:
            for key, group in same.items():
                if (entry := store.get(key)) is not None:
                    results.update(dict.fromkeys(group, _done(entry)))
        cached = set(results)
        if len(cached) < len(planned) and isinstance(session, LazySession):
            session.load()  # now, not in the generation timing; a model that fails to load changes nothing
        write_state(layout, build, model=model.name, model_id=model.model_id, codec_id=model.codec_id)
        order = list(dict.fromkeys(p.section for p in planned))
        progress.start([(s, sum(p.section == s for p in planned),
                         sum(planned[i].section == s for i in cached)) for s in order])

        pending = [group[0] for group in same.values() if group[0] not in results]

        def on_done(i: int, result: GenerationResult, report: LineReport) -> None:
            store.put(keys[i], result)
            entry = _done(result)
            for j in same[keys[i]]:
                results[j] = entry
                generated.add(j)
                progress.line_done(planned[j].section, result.seconds)

        generated: set[int] = set()
        stats = generate_missing(
            session, pending, depends=context, is_done=results.__contains__,
            build_request=lambda i: _with_context(planned[i], context[i], planned, results), on_done=on_done,
            estimate_seconds=lambda i: speech_seconds(planned[i].display_text,
                                                      planned[i].request.max_frames / FRAME_RATE),
            batch_size=batch_size, progress=progress)
        generated_seconds, gen_time = stats.seconds, stats.spent

        progress.stage("assembling")
        lines = [LineAudio(frames=int(results[i].codes.shape[1]), finished=results[i].finished,
                           generated=i in generated) for i in range(len(planned))]
        outputs, manifest = write_build(project, build, planned, keys, lines, store, model)
        return RenderSummary(
            title=project.title, model=model.name, model_id=model.model_id, codec_id=model.codec_id,
            is_random=model.is_random, lines=len(planned), generated=len({keys[i] for i in generated}),
            cached=len(cached), duration=manifest.duration, generated_seconds=generated_seconds,
            generation_time=gen_time, outputs=outputs,
            unfinished=[f"{m.section} #{m.index + 1}" for m in manifest.lines if not m.finished],  # as validate counts
            model_loaded=not isinstance(session, LazySession) or session.loaded, mastering=manifest.mastering,
        )


def _check_format(project: Project) -> None:
    """Refuse, before any model loads, a master format this installation cannot write."""
    from higgs_cli.audio import io as audio_io

    fmt = project.output.format
    if fmt not in audio_io.supported_output_formats():
        raise UsageError(f"{project.file}: output.format {fmt} cannot be written by this installation's libsndfile "
                         f"(it writes {', '.join(audio_io.supported_output_formats())})",
                         hint="choose another output.format, or install a libsndfile with that format")
