"""The build manifest (`manifest.json` beside the outputs): what a render wrote, from which
lines, with which model. Read and written here only; status and clean read it back
through `read_manifest`.

The manifest is a file anyone could edit: `BuildManifest.files` gives only
paths that lie inside the build folder, whatever the manifest says.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import file_sha256, read_json, resolve_inside
from higgs_cli.project.layout import MANIFEST

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import PlannedLine

ASSEMBLY_VERSION = 4  # bump when assembly or mastering changes what the same lines give (3: chapters, review page)
# 4: DC and rumble removed from every line (stems DC-free, the master high-passed), stems numbered from 1
# 2: true-peak limiting with a measured report, tags, readable subtitle cues, MP3 at 44.1 kHz and a set bitrate
OUTPUT_KINDS = ("master", "stems", "srt", "vtt")
NOT_ASSEMBLY = ("max_hours",)  # output settings that change no output


@dataclass
class ManifestLine:
    """One line of the build, in track order."""

    section: str
    index: int  # position within its section's planned lines
    speaker: str | None
    text: str  # as shown (subtitles)
    prompt_text: str  # as the model read it
    start: float  # seconds in the master
    end: float
    key: str  # its cache key
    seed: int
    sampling: dict
    max_frames: int
    frames: int
    finished: bool  # False: cut at max_frames
    source: str  # "generated" in this render, or "cache"
    pause_after: float
    context_from: list[int]
    stem: str | None  # relative to the build folder
    extra: dict = field(default_factory=dict)
    missing: bool = False  # never rendered (a partial render): not in the outputs
    ref: str | None = None  # "SECTION:N", as status and every message number lines
    id: str | None = None  # the line's own `id:`
    flags: list[dict] = field(default_factory=list)  # the quality guards' findings on the kept try
    tries: int = 1  # generations made (1 + retries used)
    approved: bool = False
    take: int | None = None  # the picked take (`project pick`), when one applies


@dataclass
class BuildManifest:
    title: str
    model: str
    model_id: str
    codec_id: str
    is_random: bool
    note: str | None
    sample_rate: int  # the master's own rate (an MP3 is encoded at 44.1 kHz); stems are 24 kHz
    duration: float
    rendered_at: str
    outputs: dict[str, Any]  # kind -> path relative to the build folder (stems: a list)
    lines: list[ManifestLine]
    assembly: str | None = None  # assembly_digest() of what the outputs were made from
    mastering: dict | None = None  # measured figures of the master, when the mastering step reports them

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    def files(self, folder: Path) -> list[Path]:
        """The output files this manifest lists that lie inside `folder`, through no link (never the
        manifest itself): an edited manifest cannot make `clean` or `restore` delete anything else."""
        found = []
        for value in self.outputs.values():
            for rel in value if isinstance(value, list) else [value]:
                if not isinstance(rel, str):
                    continue
                try:
                    path = resolve_inside(folder, rel, what="output")
                except UsageError:  # outside the folder, or through a link: not ours to delete
                    continue
                if path.name != MANIFEST:
                    found.append(path)
        return found

    @property
    def keys(self) -> list[str]:
        return [line.key for line in self.lines]


def read_manifest(folder: Path) -> BuildManifest | None:
    """The manifest in `folder`, or None when there is none or it is not a higgs manifest."""
    data = read_json(folder / MANIFEST)
    if data is None or not isinstance(data.get("lines"), list) or not isinstance(data.get("model_id"), str):
        return None
    outputs = data.get("outputs")
    lines = []
    for item in data["lines"]:
        if not isinstance(item, dict):
            return None
        known = {k: item.get(k) for k in ManifestLine.__dataclass_fields__}
        known["extra"] = known["extra"] if isinstance(known["extra"], dict) else {}
        lines.append(ManifestLine(**known))
    values = {k: data.get(k) for k in BuildManifest.__dataclass_fields__}
    values.update(outputs=outputs if isinstance(outputs, dict) else {}, lines=lines)
    return BuildManifest(**values)


def is_build(folder: Path) -> bool:
    """Whether `folder` holds a higgs render (a manifest of ours)."""
    return read_manifest(folder) is not None


def assembly_digest(project: Project, planned: list[PlannedLine], keys: list[str]) -> str:
    """A digest of everything that shapes the outputs besides the lines' audio: the title and
    tags, the output settings, and each line's key, place, speaker, shown text and pause. A build made
    from other inputs is not current, even when every line is cached."""
    return _assembly(project, [[key, line.section, line.speaker, line.display_text, line.pause_after, line.extra]
                               for line, key in zip(planned, keys, strict=True)])


def settings_unchanged(project: Project, planned: list[PlannedLine], manifest: BuildManifest) -> bool | None:
    """Whether what shapes the outputs besides the lines themselves (the title and tags, the output
    settings, section titles, pauses) is as the build was made: its digest made again from the build's
    own lines (keys, places, speakers, texts) with today's pauses. None when lines were added or removed
    since (it cannot tell), or the build records no digest."""
    if not isinstance(manifest.assembly, str) or len(manifest.lines) != len(planned):
        return None
    rows = [[built.key, built.section, built.speaker, built.text, line.pause_after, built.extra]
            for built, line in zip(manifest.lines, planned, strict=True)]
    return _assembly(project, rows) == manifest.assembly


def _assembly(project: Project, rows: list[list]) -> str:
    settings = {k: v for k, v in asdict(project.output).items() if k not in NOT_ASSEMBLY}
    if project.output.format not in ("mp3", "m4b") and project.output.profile != "acx":
        del settings["bitrate"]  # only a lossy master has one (ACX makes an MP3): another format's file is the same
    cover = project.root / project.output.cover if project.output.cover else None
    recipe = {
        "v": ASSEMBLY_VERSION, "title": project.title, "artist": project.artist, "album": project.album,
        "author": project.author, "narrator": project.narrator,
        "cover": file_sha256(cover) if cover is not None and cover.is_file() else None,
        "output": settings,
        "section_titles": {section.id: section.title for section in project.sections if section.title},
        "lines": rows,
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
