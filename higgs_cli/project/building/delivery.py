"""What a project delivers besides the audio itself: checks of its delivery settings, the cover
image, the chapters and per-section slices of the track.

`check_delivery` needs no model: `validate` and `render` call it before
anything loads, so a cover that is not an image, or a format this
installation cannot write, is refused with the file and the key to fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from higgs_cli.audio.profiles import apply_profile
from higgs_cli.audio.tags import Cover
from higgs_cli.errors import UsageError

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project

MAX_COVER_BYTES = 20 * 1024 * 1024
_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
CHAPTER_FORMATS = ("mp3", "m4b")  # the formats with a place for chapters and a cover


def check_delivery(project: Project) -> Cover | None:
    """Refuse delivery settings that cannot be written; return the cover image to embed, if any."""
    settings = apply_profile(project.output)
    from higgs_cli.audio.io import supported_output_formats

    formats = supported_output_formats()
    if settings.format not in formats:
        why = (" (an M4B needs PyAV, the `av` package, with an AAC encoder)" if settings.format == "m4b" else
               " (this installation's libsndfile lacks it)")
        raise UsageError(f"{project.file}: output.format {settings.format} cannot be written here{why}",
                         hint=f"choose one of {', '.join(formats)}, or reinstall higgs to get its dependencies")
    from higgs_cli.audio.bitrates import check_bitrate
    from higgs_cli.audio.io import SAMPLE_RATE, file_rate

    check_bitrate(settings.format, file_rate(settings.format, SAMPLE_RATE, settings.sample_rate), settings.bitrate,
                  where=f"{project.file}: output.bitrate: ")
    return read_cover(project)


def read_cover(project: Project) -> Cover | None:
    """The image `output.cover` names: a PNG or JPEG file inside the project folder."""
    name = project.output.cover
    if not name:
        return None
    where = f"{project.file}: output.cover {name!r}"
    root = Path(project.root).resolve()
    path = Path(name) if Path(name).is_absolute() else Path(project.root) / name
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        raise UsageError(f"{where} cannot be resolved (a link loop?)", hint="point output.cover at an image file") \
            from None
    if not real.is_relative_to(root):
        raise UsageError(f"{where} lies outside the project folder {root}",
                         hint="copy the image into the project folder and give its path relative to it")
    if not real.exists():
        raise UsageError(f"{where} does not exist", hint="check the path; it is relative to the project folder")
    if not real.is_file():
        raise UsageError(f"{where} is not a file", hint="give the path of a PNG or JPEG image")
    size = os.path.getsize(real)
    if size > MAX_COVER_BYTES:
        raise UsageError(f"{where} is {size / 1e6:.1f} MB; a cover may be at most {MAX_COVER_BYTES // 2**20} MiB",
                         hint="use a smaller image (stores ask for about 3000 x 3000 pixels, JPEG)")
    data = real.read_bytes()
    mime = next((m for magic, m in _IMAGE_MAGIC.items() if data.startswith(magic)), None)
    if mime is None:
        raise UsageError(f"{where} is not a PNG or JPEG image", hint="convert the cover to JPEG or PNG")
    return Cover(data=data, mime=mime)


@dataclass(frozen=True)
class SectionSpan:
    """A section's stretch of the track, in samples of the assembled (pre-room-tone) track."""

    section: str
    start: int
    end: int


def section_spans(sections: Sequence[str], starts: Sequence[int], total: int) -> list[SectionSpan]:
    """Each section's samples in the track: from where its first line starts (the track's start for the
    first) to where the next section's starts (the track's end for the last). `sections` and `starts`
    name each kept line's section and its first sample, in track order."""
    firsts: list[tuple[str, int]] = []
    for section, start in zip(sections, starts, strict=True):
        if not firsts or firsts[-1][0] != section:
            firsts.append((section, start))
    spans = []
    for i, (section, start) in enumerate(firsts):
        lo = 0 if i == 0 else start
        hi = firsts[i + 1][1] if i + 1 < len(firsts) else total
        spans.append(SectionSpan(section, lo, max(lo, hi)))
    return spans


def section_file_names(spans: Sequence[SectionSpan], ext: str) -> list[str]:
    """`<nn>_<section>.<ext>`, numbered from 01 in track order."""
    from higgs_cli.project.folder.names import safe_name

    width = max(2, len(str(len(spans))))
    return [f"{i + 1:0{width}d}_{safe_name(span.section)}.{ext}" for i, span in enumerate(spans)]
