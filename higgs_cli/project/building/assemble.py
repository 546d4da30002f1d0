"""Writing a build from cached lines: stems, the mastered track, subtitles, the manifest.

Each file is written beside its final name and renamed into place at the end,
the manifest last, so an interrupted render leaves the previous build as it
was. Then the files the previous manifest listed that this build did not write
again (an old title's master, stems turned off) are removed.

Every line loses its DC offset before it is trimmed (the stems are written so),
and before it is mixed the rumble under `output.highpass` (mastering.py
`line_highpass`; audio/cleanup.py), so the loudness is measured on what is heard.
The master is limited to `output.peak` in true peak (dBTP), tagged with the
title, artist, album and narrator, given chapters (MP3, M4B) and measured as
it is written (mastering.py): the manifest's `mastering` holds the figures
and, when the target was missed, a note why. A delivery profile
(`output.profile`) sets the targets and format (audio/profiles.py).

    build/<slug>.<format>                        the mastered track
    build/sections/<nn>_<section>.<format>       one file per section (output.split: section)
    build/stems/<section>_<nnn>_<speaker>.wav    each line, trimmed, DC-free, unmastered
    build/<slug>.srt, build/<slug>.vtt           subtitles with the assembled timings
    build/review.html                            a page to look at and listen to the build (review.py)
    build/manifest.json                          what was rendered, with which model
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.audio.io import write_audio
from higgs_cli.audio.profiles import apply_profile
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import HiggsError
from higgs_cli.fsutil import atomic_dir, atomic_path
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.building.delivery import check_delivery, section_spans
from higgs_cli.project.building.mastering import SECTIONS_DIR, write_master
from higgs_cli.project.building.mixing import LineMixer
from higgs_cli.project.building.review import REVIEW, render_review
from higgs_cli.project.folder.manifest import OUTPUT_KINDS, BuildManifest, ManifestLine, assembly_digest, read_manifest
from higgs_cli.project.folder.names import section_numbers, slugify, stem_names
from higgs_cli.project.folder.store import Store
from higgs_cli.project.layout import MANIFEST, ProjectLayout
from higgs_cli.project.planning.refs import source_lines
from higgs_cli.sessions.identity import ModelIdentity

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project


@dataclass(frozen=True)
class LineAudio:
    """What the build needs to know of a line besides its cached audio."""

    frames: int
    finished: bool
    generated: bool  # made in this render (else taken from the cache)
    missing: bool = False  # never rendered (a partial render): left out of the outputs, listed in the manifest
    info: dict = field(default_factory=dict)  # ref, id, flags, tries, approved...: copied to its ManifestLine


def write_build(project: Project, build: Path, planned: list[PlannedLine], keys: list[str],
                lines: list[LineAudio], store: Store, model: ModelIdentity,
                mixer: LineMixer | None = None) -> tuple[dict[str, Any], BuildManifest]:
    """Write the build of `planned` into `build`; return the outputs (absolute paths) and the manifest.

    The track is never held whole: each line is read from the cache, trimmed,
    written as a stem and mixed into a temporary file of samples while its
    loudness is measured (mixing.py; a render hands over the `mixer` that did
    this while lines were generated); the master is then limited and encoded block by block.
    Lines never rendered (`LineAudio.missing`) are left out of the master, the
    stems and the subtitles, and listed in the manifest as missing.
    """
    from higgs_cli.audio.subtitles import Cue, build_cues, to_srt, to_webvtt

    cover = check_delivery(project)
    settings = apply_profile(project.output)
    kept = [i for i, line in enumerate(lines) if not line.missing]
    if not kept:
        raise HiggsError("no line of the project has been rendered yet, so there is no build to write",
                         hint="render the project (or the lines you want) first")
    build.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(build)
    slug = slugify(project.title)
    stems = stem_names(planned, [line.id if line is not None else None for line in source_lines(project, planned)])
    outputs: dict[str, Any] = {"master": build / f"{slug}.{settings.format}"}
    if settings.subtitles:
        outputs["srt"], outputs["vtt"] = build / f"{slug}.srt", build / f"{slug}.vtt"
    outputs["review"] = build / REVIEW
    outputs["manifest"] = build / MANIFEST
    sizes: dict[int, int] = {}
    with contextlib.ExitStack() as commit:  # entered manifest first: renamed into place last
        tmp = {name: commit.enter_context(atomic_path(outputs[name]))
               for name in ("manifest", "review", "vtt", "srt", "master") if name in outputs}
        stems_tmp = commit.enter_context(atomic_dir(build / "stems")) if settings.stems else None
        if mixer is None:  # a build from the cache alone: every line is ready
            mixer = commit.enter_context(LineMixer(project, planned, keys, kept, store,
                                                   folder=ProjectLayout(project.root).higgs_dir))
            mixer.ready(kept)
        if mixer.kept != kept:
            raise RuntimeError("the mixer was given other lines than the build keeps")
        mix = mixer.result()
        for i in kept:
            sizes[i] = mix.stem_at[i][1]
            if stems_tmp is not None and sizes[i]:
                write_audio(stems_tmp / stems[i], mix.stem_audio(i))  # unmastered, but DC-free
        sections = section_spans([planned[i].section for i in kept], [round(a * SAMPLE_RATE) for a, _ in mix.spans],
                                 mix.total)
        master = write_master(project, settings, tmp["master"], mix.file, mix.total, mix.meter, mix.energy, sections,
                              cover, split_dir=commit.enter_context(atomic_dir(build / SECTIONS_DIR))
                              if settings.split == "section" else None)
        kept_spans = mix.spans
        if stems_tmp is not None:
            outputs["stems"] = [build / "stems" / stems[i] for i in kept if sizes.get(i)]
        if master.section_files:
            outputs["sections"] = [build / SECTIONS_DIR / name for name in master.section_files]
        head = master.head_s
        names = {key: s.display_name for key, s in project.speakers.items() if s.display_name}  # `name:`
        spans = _all_spans(lines, kept, kept_spans, head)

        if settings.subtitles:
            cues = build_cues([Cue(*spans[i], planned[i].display_text, names.get(planned[i].speaker or "",
                                                                                   planned[i].speaker)) for i in kept],
                              labels=settings.subtitle_labels)
            tmp["srt"].write_text(to_srt(cues), encoding="utf-8")
            tmp["vtt"].write_text(to_webvtt(cues), encoding="utf-8")

        listed = {k: outputs[k] for k in (*OUTPUT_KINDS, "sections", "review") if k in outputs}
        manifest = BuildManifest(
            title=project.title, model=model.name, model_id=model.model_id, codec_id=model.codec_id,
            is_random=model.is_random, note=model.note, sample_rate=master.sample_rate,
            duration=master.frames / SAMPLE_RATE, rendered_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            outputs={k: [_rel(p, build) for p in v] if isinstance(v, list) else _rel(v, build)
                     for k, v in listed.items()},
            lines=_manifest_lines(planned, keys, lines, spans,
                                  [f"stems/{n}" if settings.stems and sizes.get(i) else None
                                   for i, n in enumerate(stems)]),
            assembly=assembly_digest(project, planned, keys), mastering=master.report,
        )
        titles = {s.id: s.title or s.id for s in project.sections}  # chapter markers, as the master's chapters
        tmp["review"].write_text(render_review(manifest, master.peaks, names, titles), encoding="utf-8")
        manifest.write(tmp["manifest"])
    if previous is not None:
        _remove_unwritten(previous, build, written=manifest.files(build))
    return {**listed, "manifest": outputs["manifest"]}, manifest


def _all_spans(lines: list[LineAudio], kept: list[int], kept_spans: list[tuple[float, float]],
               head: float) -> list[tuple[float, float]]:
    """Every line's span in the master (room tone at the head shifts them); a missing line gets an empty
    span where it would have been."""
    spans: list[tuple[float, float]] = []
    found = dict(zip(kept, kept_spans, strict=True))
    at = head
    for i in range(len(lines)):
        if i in found:
            a, b = found[i]
            spans.append((a + head, b + head))
            at = b + head
        else:
            spans.append((at, at))
    return spans


def _manifest_lines(planned: list[PlannedLine], keys: list[str], lines: list[LineAudio],
                    spans: list[tuple[float, float]], stems: list[str | None]) -> list[ManifestLine]:
    return [ManifestLine(
        section=line.section, index=n, speaker=line.speaker, text=line.display_text,
        prompt_text=line.request.text, start=start, end=end, key=key, seed=line.request.seed,
        sampling=line.request.sampling.to_dict(), max_frames=line.request.max_frames, frames=audio.frames,
        finished=audio.finished, source="generated" if audio.generated else "cache", pause_after=line.pause_after,
        context_from=list(line.context_from), stem=stem, extra=line.extra, missing=audio.missing, **audio.info)
        for line, n, key, audio, (start, end), stem in zip(planned, section_numbers(planned), keys, lines, spans,
                                                           stems, strict=True)]


def _remove_unwritten(previous: BuildManifest, build: Path, *, written: list[Path]) -> None:
    """Remove what the previous build listed and this one did not write again (e.g. an old title's master)."""
    def where(path: Path) -> Path:  # the link itself, not what it points to
        return path.parent.resolve() / path.name

    keep = {where(path) for path in written}
    for path in previous.files(build):
        if where(path) not in keep and (path.is_file() or path.is_symlink()):
            path.unlink(missing_ok=True)
    for name in ("stems", SECTIONS_DIR):
        folder = build / name
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()


def _rel(path: Path, base: Path) -> str:
    return Path(path).relative_to(base).as_posix()
