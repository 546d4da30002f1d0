"""Writing a build from cached lines: stems, the mastered track, subtitles, the manifest.

Each file is written beside its final name and renamed into place at the end,
the manifest last, so an interrupted render leaves the previous build as it
was. Then the files the previous manifest listed that this build did not write
again (an old title's master, stems turned off) are removed.

The master is limited to `output.peak` in true peak (dBTP), tagged with the
title, artist and album, and measured as it is written: the manifest's
`mastering` holds the figures and, when the target was missed, a note why.

    build/<slug>.<format>                        the mastered track
    build/stems/<section>_<nnn>_<speaker>.wav    each line, trimmed, unmastered
    build/<slug>.srt, build/<slug>.vtt           subtitles with the assembled timings
    build/manifest.json                          what was rendered, with which model
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import HiggsError
from higgs_cli.fsutil import atomic_dir, atomic_path
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.layout import MANIFEST, ProjectLayout
from higgs_cli.project.lazy import ModelIdentity
from higgs_cli.project.manifest import OUTPUT_KINDS, BuildManifest, ManifestLine, assembly_digest, read_manifest
from higgs_cli.project.names import section_numbers, slugify, stem_names
from higgs_cli.project.store import Store

if TYPE_CHECKING:
    from higgs_cli.project.model import Project


@dataclass(frozen=True)
class LineAudio:
    """What the build needs to know of a line besides its cached audio."""

    frames: int
    finished: bool
    generated: bool  # made in this render (else taken from the cache)
    missing: bool = False  # never rendered (a partial render): left out of the outputs, listed in the manifest
    info: dict = field(default_factory=dict)  # ref, id, flags, tries, approved...: copied to its ManifestLine


def write_build(project: Project, build: Path, planned: list[PlannedLine], keys: list[str],
                lines: list[LineAudio], store: Store, model: ModelIdentity) -> tuple[dict[str, Any], BuildManifest]:
    """Write the build of `planned` into `build`; return the outputs (absolute paths) and the manifest.

    The track is never held whole: each line is read from the cache, trimmed,
    written as a stem and mixed into a temporary file of samples while its
    loudness is measured; the master is then limited and encoded block by block.
    """
    import soundfile

    from higgs_cli.audio.io import write_audio, write_audio_blocks
    from higgs_cli.audio.master import LoudnessMeter, MasteredStream, assemble_stream, trim_silence
    from higgs_cli.audio.subtitles import Cue, build_cues, to_srt, to_webvtt

    settings = project.output
    build.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(build)
    slug = slugify(project.title)
    stems = stem_names(planned)
    outputs: dict[str, Any] = {"master": build / f"{slug}.{settings.format}"}
    if settings.subtitles:
        outputs["srt"], outputs["vtt"] = build / f"{slug}.srt", build / f"{slug}.vtt"
    outputs["manifest"] = build / MANIFEST
    sizes: list[int] = []
    with contextlib.ExitStack() as commit:  # entered manifest first: renamed into place last
        tmp = {name: commit.enter_context(atomic_path(outputs[name]))
               for name in ("manifest", "vtt", "srt", "master") if name in outputs}
        stems_tmp = commit.enter_context(atomic_dir(build / "stems")) if settings.stems else None

        def clips() -> Iterator[np.ndarray]:
            for i, (line, n) in enumerate(zip(planned, section_numbers(planned), strict=True)):
                entry = store.get(keys[i])
                if entry is None:
                    raise HiggsError(f"the cache entry of {line.section} #{n + 1} vanished during the render",
                                     hint="render again")
                audio = entry.audio
                if settings.trim_silence:
                    trimmed = trim_silence(audio)
                    audio = trimmed if trimmed.size else audio  # an all-silent line keeps its length
                if stems_tmp is not None and audio.size:
                    write_audio(stems_tmp / stems[i], audio)
                sizes.append(audio.size)
                yield audio

        meter = LoudnessMeter()
        with tempfile.TemporaryFile(dir=ProjectLayout(project.root).higgs_dir) as mix:
            def sink(piece: np.ndarray) -> None:
                meter.add(piece)
                mix.write(np.ascontiguousarray(piece, dtype=np.float32).tobytes())

            total, spans = assemble_stream(clips(), len(planned), [p.pause_after for p in planned[:-1]], sink,
                                           crossfade_ms=settings.crossfade_ms)
            mix.flush()

            def read(lo: int, hi: int) -> np.ndarray:
                mix.seek(lo * 4)
                return np.frombuffer(mix.read((hi - lo) * 4), dtype=np.float32)

            mastered = MasteredStream(read, total, gain=meter.gain_to(settings.loudness),
                                      loudness=settings.loudness, peak_db=settings.peak)
            write_audio_blocks(tmp["master"], mastered, tags=_tags(project),
                               bitrate_kbps=settings.bitrate if settings.format == "mp3" else None)
            report = mastered.report()  # measured as it was written
            master_rate = soundfile.info(str(tmp["master"])).samplerate  # an MP3 is resampled on the way
        if stems_tmp is not None:
            outputs["stems"] = [build / "stems" / n for n, size in zip(stems, sizes, strict=True) if size]

        if settings.subtitles:
            cues = build_cues([Cue(start, end, line.display_text, line.speaker)
                               for line, (start, end) in zip(planned, spans, strict=True)],
                              labels=settings.subtitle_labels)
            tmp["srt"].write_text(to_srt(cues), encoding="utf-8")
            tmp["vtt"].write_text(to_webvtt(cues), encoding="utf-8")

        listed = {k: outputs[k] for k in OUTPUT_KINDS if k in outputs}
        manifest = BuildManifest(
            title=project.title, model=model.name, model_id=model.model_id, codec_id=model.codec_id,
            is_random=model.is_random, note=model.note, sample_rate=master_rate, duration=total / SAMPLE_RATE,
            rendered_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            outputs={k: [_rel(p, build) for p in v] if isinstance(v, list) else _rel(v, build)
                     for k, v in listed.items()},
            lines=_manifest_lines(planned, keys, lines, spans, [f"stems/{n}" if settings.stems and size else None
                                                                 for n, size in zip(stems, sizes, strict=True)]),
            assembly=assembly_digest(project, planned, keys), mastering=report.to_dict(),
        )
        manifest.write(tmp["manifest"])
    if previous is not None:
        _remove_unwritten(previous, build, written=manifest.files(build))
    return {**listed, "manifest": outputs["manifest"]}, manifest


def _tags(project: Project) -> dict[str, str | None]:
    """What the master's metadata says: the project's title, artist and album."""
    return {"title": project.title, "artist": project.artist, "album": project.album}


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
    stems = build / "stems"
    if stems.is_dir() and not stems.is_symlink() and not any(stems.iterdir()):
        stems.rmdir()


def _rel(path: Path, base: Path) -> str:
    return Path(path).relative_to(base).as_posix()
