"""Rendering: plan, generate what the cache lacks, assemble, master, write the build.

A render holds the project's lock. Lines found in the cache are not generated
again; the rest go to the model in batches, in waves that respect
`context_from` (a line waits for the lines it hears). Each result is cached as
soon as its batch returns, so an interrupted render resumes where it stopped.
Only when every line exists are the outputs written, each atomically, the
manifest last:

    build/<slug>.<format>                  the mastered track
    build/stems/<section>_<nnn>_<speaker>.wav   each line, trimmed, unmastered
    build/<slug>.srt, build/<slug>.vtt     subtitles with the assembled timings
    build/manifest.json                    what was rendered, with which model

`project_status` answers "what would a render do?" without loading a model: it
keys lines with the model and codec fingerprints recorded by the last render.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from higgs_cli.engine.request import SAMPLE_RATE, GenerationRequest, GenerationResult, Turn
from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.fsutil import atomic_dir, atomic_path, atomic_write_text, exclusive_lock, sweep_temporaries
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.plan import (
    ProjectPlanContext,
    check_render_length,
    global_context,
    plan_project,
    plan_sections,
)
from higgs_cli.project.store import CacheEntry, Store, line_key

if TYPE_CHECKING:
    from higgs_cli.project.model import Project

MANIFEST = "manifest.json"
CALL_BATCHES = 4  # requests per generate() call, in batches: the engine refills slots as lines finish,
# and an interruption loses at most this many batches of work
RANDOM_NOTE = "rendered with a random-init model: the audio is noise, not speech"


class RenderProgress(Protocol):
    """What a render reports as it goes. Every method is optional (see NullProgress)."""

    def start(self, sections: list[tuple[str, int, int]]) -> None:
        """Once, after planning: (section id, lines, lines already cached) in order."""

    def frames(self, n: int) -> None:
        """After each decode step: frames (40 ms each) produced across the batch."""

    def line_done(self, section: str, seconds: float) -> None:
        """A line was generated and cached; `seconds` of audio."""

    def stage(self, message: str) -> None:
        """A step after generation began, e.g. "assembling"."""


class NullProgress:
    def start(self, sections):
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
    unfinished: list[str] = field(default_factory=list)  # lines cut at max_seconds

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


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:80] or "project"


def _safe(text: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text or "none").strip("-.") or "none"


def _state_file(project: Project) -> Path:
    return project.root / ".higgs" / "last_render.json"


def _folder_id(folder: Path) -> str:
    """Which folder this is on disk: a copy of a project has another one, at another path."""
    info = folder.stat()
    return f"{folder.resolve()}\0{info.st_dev}:{info.st_ino}"


def _write_state(project: Project, build: Path, **ids: str) -> None:
    """Remember the last render, for status and clean. The build folder is kept relative to the
    project when it lies inside it, and the state names the folder it belongs to: a copied or
    moved project must never act on its original's outputs."""
    root = project.root.resolve()
    where = build.resolve()
    build_dir = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
    atomic_write_text(_state_file(project), json.dumps(
        {**ids, "project": _folder_id(project.root), "build_dir": build_dir}, indent=2))


def _last_state(project: Project) -> dict:
    """The last render's state, or {} when there is none or it was written for another folder."""
    state = _read_json(_state_file(project)) or {}
    if state.get("project") != _folder_id(project.root) or not isinstance(state.get("build_dir"), str):
        return {}  # a copy, a moved project, or a state from before states named their folder
    return state


def _state_build(project: Project, state: dict) -> Path:
    return project.root / state["build_dir"] if state else project.root / "build"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _project_lock(project: Project):
    """The lock every writer of a project's .higgs/ and build outputs holds: render and clean."""
    return exclusive_lock(project.root / ".higgs" / "render.lock", what=f"project {project.title}")


def _sweep(project: Project, build: Path) -> None:
    """Remove what a render killed mid-write left behind (temporary files; never cache entries)."""
    higgs = project.root / ".higgs"
    for folder in (higgs / "cache", higgs / "codes", higgs, build):
        sweep_temporaries(folder)


def _keys(planned: list[PlannedLine], context: list[tuple[int, ...]], *, model_id: str, codec_id: str) -> list[str]:
    keys: list[str] = []
    for line, deps in zip(planned, context, strict=True):
        keys.append(line_key(line.request, model_id=model_id, codec_id=codec_id,
                             context_keys=[keys[j] for j in deps]))
    return keys


@dataclass(frozen=True)
class _Done:
    """A line that exists in the cache. Its audio stays on disk until the track is assembled, so
    a render's memory does not grow with the project."""

    codes: np.ndarray
    finished: bool


def _done(entry: CacheEntry | GenerationResult) -> _Done:
    return _Done(codes=np.asarray(entry.codes, dtype=np.int16), finished=bool(entry.finished))  # as cached


def _check_folders(project: Project, build: Path, *, custom: bool) -> None:
    """Refuse to write through links planted in a project, or into a folder higgs did not make.

    A project may come from someone else: its `.higgs/` or `build/` could be a
    symbolic link to a folder of yours that a render or clean would then write
    into or delete. An --output-dir may be anywhere, but if it already holds
    files they must be an earlier render's.
    """
    higgs = project.root / ".higgs"
    folders = [higgs, higgs / "cache", higgs / "codes"] + ([] if custom else [project.root / "build"])
    for folder in folders:
        if folder.is_symlink():
            raise UsageError(f"{folder} is a symbolic link (to {os.readlink(folder)}); higgs does not write or "
                             "delete through links in a project", hint="remove the link; higgs makes the folder itself")
    if custom:
        if build.exists() and not build.is_dir():
            raise UsageError(f"--output-dir {build} is a file, not a folder")
        if build.is_dir() and any(build.iterdir()) and not _is_manifest(build / MANIFEST):
            raise UsageError(f"--output-dir {build} already holds files that are not a higgs render (it has no "
                             f"{MANIFEST}); refusing to write into it", hint="choose an empty or a new folder")


def _is_manifest(path: Path) -> bool:
    data = _read_json(path)
    return data is not None and isinstance(data.get("lines"), list) and "model_id" in data


def _with_context(line: PlannedLine, deps: tuple[int, ...], planned: list[PlannedLine],
                  results: dict[int, _Done]) -> GenerationRequest:
    if not deps:
        return line.request
    heard = tuple(Turn(text=planned[j].request.text, codes=results[j].codes) for j in deps)
    r = line.request
    return GenerationRequest(text=r.text, history=r.history + heard, scene=r.scene, sampling=r.sampling,
                             seed=r.seed, max_frames=r.max_frames, system=r.system)


def render_project(project: Project, session, *, out_dir: str | Path | None = None,
                   progress: RenderProgress | None = None, force: bool = False, batch_size: int = 8,
                   library=None, model_name: str | None = None) -> RenderSummary:
    """Render `project` with `session` (a ModelSession or anything with its interface)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    progress = progress or NullProgress()
    default = project.root / "build"
    build = Path(out_dir) if out_dir is not None else default
    custom = build.resolve() != default.resolve()
    _check_folders(project, build, custom=custom)
    model = model_name or getattr(session, "name", None) or session.model_id
    with _project_lock(project):
        _sweep(project, build)
        planned = plan_project(project, session, library)
        if not planned:
            raise UsageError(f"{project.file}: the project has no lines to render")
        check_render_length(project, planned)
        context = global_context(planned)
        keys = _keys(planned, context, model_id=session.model_id, codec_id=session.codec_id)
        _write_state(project, build, model=model, model_id=session.model_id, codec_id=session.codec_id)
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
        order = list(dict.fromkeys(p.section for p in planned))
        progress.start([(s, sum(p.section == s for p in planned),
                         sum(planned[i].section == s for i in cached)) for s in order])

        generated, generated_seconds, gen_time = _generate(
            session, planned, context, keys, same, results, store, batch_size, progress)

        progress.stage("assembling")
        summary_outputs, manifest_lines, duration = _write_outputs(
            project, build, planned, keys, results, generated, store, model=model, session=session)
        return RenderSummary(
            title=project.title, model=model, model_id=session.model_id, codec_id=session.codec_id,
            is_random=bool(getattr(session, "is_random", False)), lines=len(planned),
            generated=len({keys[i] for i in generated}), cached=len(cached), duration=duration,
            generated_seconds=generated_seconds, generation_time=gen_time, outputs=summary_outputs,
            unfinished=[f"{m['section']} #{m['index']}" for m in manifest_lines if not m["finished"]],
        )


def _generate(session, planned, context, keys, same, results, store, batch_size, progress):
    """Generate every line missing from `results`, in dependency waves; cache each call's results.

    Of each group of lines with equal keys (`same`), only the first is generated.
    """
    pending = [group[0] for group in same.values() if group[0] not in results]
    generated: set[int] = set()
    seconds = spent = 0.0
    while pending:
        ready = [i for i in pending if all(j in results for j in context[i])]
        if not ready:  # plan_sections only allows earlier context lines, so this is a bug
            raise HiggsError("render stalled: lines wait on context that is never generated")
        batch = ready[:batch_size * CALL_BATCHES]
        started = time.perf_counter()
        out = session.generate([_with_context(planned[i], context[i], planned, results) for i in batch],
                               batch_size=batch_size, progress=progress.frames)
        spent += time.perf_counter() - started
        if len(out) != len(batch):
            raise HiggsError(f"the model returned {len(out)} results for {len(batch)} requests")
        for i, result in zip(batch, out, strict=True):
            store.put(keys[i], result)
            entry = _done(result)
            for j in same[keys[i]]:
                results[j] = entry
                generated.add(j)
                progress.line_done(planned[j].section, result.seconds)
            seconds += result.seconds
        del out, result  # the audio is in the cache now; do not hold it while the next call runs
        pending = [i for i in pending if i not in results]
    return generated, seconds, spent


def _write_outputs(project, build, planned, keys, results, generated, store, *, model, session):
    """Write the build. Each file is written beside its final name and renamed into place at the end,
    the manifest last, so an interrupted render leaves the previous build as it was.

    The track is never held whole: each line is read from the cache, trimmed,
    written as a stem and mixed into a temporary file of samples while its
    loudness is measured; the master is then limited and encoded block by block.
    """
    from higgs_cli.audio.io import write_audio, write_audio_blocks
    from higgs_cli.audio.master import LoudnessMeter, assemble_stream, master_blocks, trim_silence
    from higgs_cli.audio.subtitles import Cue, to_srt, to_webvtt

    settings = project.output
    build.mkdir(parents=True, exist_ok=True)
    slug = slugify(project.title)
    numbers: dict[str, int] = {}
    stem_names: list[str] = []
    for line in planned:
        n = numbers.get(line.section, 0)
        numbers[line.section] = n + 1
        stem_names.append(f"{_safe(line.section)}_{n:03d}_{_safe(line.speaker)}.wav")

    outputs: dict[str, Any] = {"master": build / f"{slug}.{settings.format}"}
    if settings.subtitles:
        outputs["srt"], outputs["vtt"] = build / f"{slug}.srt", build / f"{slug}.vtt"
    outputs["manifest"] = build / MANIFEST
    sizes: list[int] = []
    with contextlib.ExitStack() as commit:  # entered manifest first: renamed into place last
        tmp = {name: commit.enter_context(atomic_path(outputs[name]))
               for name in ("manifest", "vtt", "srt", "master") if name in outputs}
        stems_tmp = commit.enter_context(atomic_dir(build / "stems")) if settings.stems else None

        def clips():
            for i, line in enumerate(planned):
                entry = store.get(keys[i])
                if entry is None:
                    raise HiggsError(f"the cache entry of {line.section} #{i} vanished during the render",
                                     hint="render again")
                audio = entry.audio
                if settings.trim_silence:
                    trimmed = trim_silence(audio)
                    audio = trimmed if trimmed.size else audio  # an all-silent line keeps its length
                if stems_tmp is not None and audio.size:
                    write_audio(stems_tmp / stem_names[i], audio)
                sizes.append(audio.size)
                yield audio

        meter = LoudnessMeter()
        with tempfile.TemporaryFile(dir=project.root / ".higgs") as mix:
            def sink(piece: np.ndarray) -> None:
                meter.add(piece)
                mix.write(np.ascontiguousarray(piece, dtype=np.float32).tobytes())

            total, spans = assemble_stream(clips(), len(planned), [p.pause_after for p in planned[:-1]], sink,
                                           crossfade_ms=settings.crossfade_ms)
            mix.flush()

            def read(lo: int, hi: int) -> np.ndarray:
                mix.seek(lo * 4)
                return np.frombuffer(mix.read((hi - lo) * 4), dtype=np.float32)

            write_audio_blocks(tmp["master"], master_blocks(read, total, gain=meter.gain_to(settings.loudness),
                                                            peak_db=settings.peak))
        if stems_tmp is not None:
            outputs["stems"] = [build / "stems" / n for n, size in zip(stem_names, sizes, strict=True) if size]

        if settings.subtitles:
            cues = [Cue(start, end, line.display_text, line.speaker)
                    for line, (start, end) in zip(planned, spans, strict=True) if line.display_text]
            tmp["srt"].write_text(to_srt(cues), encoding="utf-8")
            tmp["vtt"].write_text(to_webvtt(cues), encoding="utf-8")

        numbers.clear()
        lines = []
        for i, (line, (start, end)) in enumerate(zip(planned, spans, strict=True)):
            n = numbers.get(line.section, 0)
            numbers[line.section] = n + 1
            lines.append({
                "section": line.section, "index": n, "speaker": line.speaker, "text": line.display_text,
                "prompt_text": line.request.text, "start": start, "end": end, "key": keys[i],
                "seed": line.request.seed, "sampling": line.request.sampling.to_dict(),
                "max_frames": line.request.max_frames, "frames": int(results[i].codes.shape[1]),
                "finished": results[i].finished, "source": "generated" if i in generated else "cache",
                "pause_after": line.pause_after, "context_from": list(line.context_from),
                "stem": f"stems/{stem_names[i]}" if settings.stems and sizes[i] else None,
                "extra": line.extra,
            })
        is_random = bool(getattr(session, "is_random", False))
        listed = {k: outputs[k] for k in ("master", "stems", "srt", "vtt") if k in outputs}
        manifest = {
            "title": project.title, "model": model, "model_id": session.model_id, "codec_id": session.codec_id,
            "is_random": is_random, "note": RANDOM_NOTE if is_random else None,
            "sample_rate": SAMPLE_RATE, "duration": total / SAMPLE_RATE,
            "rendered_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "outputs": {k: [_rel(p, build) for p in v] if isinstance(v, list) else _rel(v, build)
                        for k, v in listed.items()},
            "lines": lines,
        }
        tmp["manifest"].write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return {**listed, "manifest": outputs["manifest"]}, lines, manifest["duration"]


def _rel(path: Path, base: Path) -> str:
    return Path(path).relative_to(base).as_posix()


# -- status ------------------------------------------------------------------------

RENDERED, STALE, MISSING = "rendered", "stale", "missing"


@dataclass
class LineState:
    section: str
    index: int  # position within the section's planned lines
    speaker: str | None
    text: str
    key: str | None
    state: str  # rendered | stale | missing

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ProjectStatus:
    """Line states plus what they were judged against. Iterates like its `lines`.

    missing: no cache entry (a render generates it); stale: cached but not in
    the current build outputs, or the outputs are older than its entry (a
    render only re-assembles); rendered: in the outputs, which are current.
    """

    lines: list[LineState]
    model_id: str | None
    codec_id: str | None
    build_dir: Path
    outputs_current: bool  # the build holds exactly the current script
    unresolved_voices: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, i):
        return self.lines[i]

    def counts(self) -> dict[str, int]:
        return {s: sum(line.state == s for line in self.lines) for s in (RENDERED, STALE, MISSING)}

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "codec_id": self.codec_id, "build_dir": str(self.build_dir),
                "outputs_current": self.outputs_current, "counts": self.counts(),
                "unresolved_voices": self.unresolved_voices, "lines": [s.to_dict() for s in self.lines]}


def _ids(session_ids) -> tuple[str, str] | None:
    if session_ids is None:
        return None
    if isinstance(session_ids, dict):
        return session_ids["model_id"], session_ids["codec_id"]
    if isinstance(session_ids, Sequence) and not isinstance(session_ids, str):
        return str(session_ids[0]), str(session_ids[1])
    return session_ids.model_id, session_ids.codec_id


def project_status(project: Project, session_ids=None, *, out_dir: str | Path | None = None,
                   library=None) -> ProjectStatus:
    """The state of every line, judged without a model.

    `session_ids` (a session, a {"model_id", "codec_id"} dict or a pair) picks the
    fingerprints to key lines with; by default those of the last render.
    """
    last = _last_state(project)
    build = Path(out_dir) if out_dir is not None else _state_build(project, last)
    manifest = _read_json(build / MANIFEST)
    ids = _ids(session_ids)
    if ids is None and last.get("model_id") and last.get("codec_id"):
        ids = (last["model_id"], last["codec_id"])
    if ids is None and manifest and manifest.get("model_id") and manifest.get("codec_id"):
        ids = (manifest["model_id"], manifest["codec_id"])
    codec_id = ids[1] if ids else "none"
    ctx = ProjectPlanContext(project, codec_id=codec_id, encode=None, library=library)
    planned = plan_sections(project, ctx)
    context = global_context(planned)
    keys: list[str | None] = _keys(planned, context, model_id=ids[0], codec_id=ids[1]) if ids \
        else [None] * len(planned)

    store = Store(project.root)
    built_keys: list[str] = []
    built_at = None
    if manifest and ids and (manifest.get("model_id"), manifest.get("codec_id")) == tuple(ids):
        master = manifest.get("outputs", {}).get("master")
        if master and (build / master).is_file():
            built_keys = [line.get("key") for line in manifest.get("lines", [])]
            built_at = (build / master).stat().st_mtime
    built = set(built_keys)

    states = []
    numbers: dict[str, int] = {}
    for line, key in zip(planned, keys, strict=True):
        n = numbers.get(line.section, 0)
        numbers[line.section] = n + 1
        mtime = store.mtime(key) if key else None
        if mtime is None:
            state = MISSING
        elif key in built and built_at is not None and built_at >= mtime:
            state = RENDERED
        else:
            state = STALE
        states.append(LineState(line.section, n, line.speaker, line.display_text, key, state))
    current = bool(states) and all(s.state == RENDERED for s in states) and built_keys == keys
    return ProjectStatus(states, ids[0] if ids else None, ids[1] if ids else None, build, current,
                         sorted(ctx.unresolved))


# -- clean -------------------------------------------------------------------------

def clean_project(project: Project, *, cache: bool = True, build: bool = True) -> list[str]:
    """Delete the render cache and/or the build outputs; return what was removed.

    Only files higgs wrote are removed: the default `build/` folder whole, and
    from a custom --output-dir only the files its manifest lists.
    """
    removed: list[str] = []
    _check_folders(project, project.root / "build", custom=False)
    with _project_lock(project):
        _sweep(project, project.root / "build")
        if cache:
            for folder in (project.root / ".higgs" / "cache", project.root / ".higgs" / "codes"):
                if folder.exists():
                    shutil.rmtree(folder)
                    removed.append(str(folder))
        if build:
            default = project.root / "build"
            for folder in dict.fromkeys([default, _state_build(project, _last_state(project))]):
                removed.extend(_clean_build(folder, whole=folder.resolve() == default.resolve()))
            _state_file(project).unlink(missing_ok=True)
    return removed


def _clean_build(folder: Path, *, whole: bool) -> list[str]:
    if not folder.exists():
        return []
    if whole:
        shutil.rmtree(folder)
        return [str(folder)]
    manifest = _read_json(folder / MANIFEST)
    if manifest is None or not _is_manifest(folder / MANIFEST):
        return []
    removed = []
    outputs = manifest.get("outputs")
    real = folder.resolve()
    for value in outputs.values() if isinstance(outputs, dict) else []:
        for rel in value if isinstance(value, list) else [value]:
            # The manifest is a file anyone could edit: remove only what lies inside the folder.
            if not isinstance(rel, str) or PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
                continue
            path = folder / rel
            if path.parent.resolve().is_relative_to(real) and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed.append(str(path))
    stems = folder / "stems"
    if stems.is_dir() and not any(stems.iterdir()):
        stems.rmdir()
    (folder / MANIFEST).unlink(missing_ok=True)
    removed.append(str(folder / MANIFEST))
    return removed
