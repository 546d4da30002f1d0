"""From the mixed track to the delivered files: gain, limiter, room tone, tags, chapters, cover,
and one file per section when `output.split: section`.

The mixed track lies in a temporary file of float32 samples (assemble.py);
it is read back block by block, mastered, and encoded into the master while
its waveform peaks are gathered for the review page. With a delivery profile
(`output.profile`) the gain aims at the profile's loudness or RMS, the
limiter at its ceiling, and room tone goes under the track and before and
after it. Section files are cut from the mastered track (kept in a second
temporary file) at section boundaries; each gets its own room tone and tags.

    build/sections/<nn>_<section>.<format>       one file per section (output.split: section)
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from higgs_cli.audio.io import file_rate, write_audio_blocks
from higgs_cli.audio.mp4 import Chapter
from higgs_cli.audio.profiles import NONE, Profile, RoomTone, get_profile
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.project.building.delivery import CHAPTER_FORMATS, SectionSpan, section_file_names

if TYPE_CHECKING:
    from higgs_cli.audio.master import LoudnessMeter
    from higgs_cli.audio.tags import Cover
    from higgs_cli.plugins.script import OutputSettings, Project

SECTIONS_DIR = "sections"
_BLOCK = 1 << 18
FULL_RANGE_TASKS = ("bgm",)
"""Tasks whose lines keep their low end (only DC is removed): a 70 Hz high-pass took 7 dB off the
bass under 100 Hz of speech over music (bass at 41-62 Hz, a 55 Hz kick), and 6.2 LU off its
loudness. A hummed melody loses at most what speech of the same pitch does (1.7 dB at the
fundamental of E2, 82 Hz; 0.4 LU for a bass melody E2-E3, 0.13 LU A2-A3): `hum` is filtered."""


def line_highpass(project: Project, planned: list, corner: float) -> list[float]:
    """Each planned line's high-pass corner in Hz: `corner` (output.highpass), 0 for FULL_RANGE_TASKS."""
    tasks = {section.id: section.task for section in project.sections}
    return [0.0 if tasks.get(line.section) in FULL_RANGE_TASKS else float(corner) for line in planned]


@dataclass
class MasterResult:
    """What writing the master gave: its length (24 kHz samples, room tone included), its file's
    rate, the measured figures, the waveform, the room tone before the first line, the section files."""

    frames: int
    sample_rate: int
    report: dict
    peaks: list
    head_s: float
    section_files: list[str]


def master_tags(project: Project, title: str | None = None) -> dict[str, str | None]:
    """The tags of a delivered file: title, artist (the author when no artist is set), album (the
    title when no album is set) and composer (the narrator, as audiobook players read it)."""
    return {"title": title or project.title, "artist": project.artist or project.author,
            "album": project.album or (project.title if title else None), "composer": project.narrator}


def _gain(profile: Profile | None, meter: LoudnessMeter, energy: float, frames: int,
          loudness: float) -> tuple[float, float]:
    """The gain for the mix and the loudness the report judges it by: to the profile's RMS (over the
    delivered length, room tone included) when it sets one, else to `loudness` LUFS."""
    if profile is not None and profile.target_rms_db is not None and energy > 0:
        rms_db = 10.0 * math.log10(energy / max(1, frames))
        gain = 10.0 ** ((profile.target_rms_db - rms_db) / 20.0)
        measured = meter.integrated()
        return gain, (loudness if measured is None else measured + 20.0 * math.log10(gain))
    return meter.gain_to(loudness), loudness


def write_master(project: Project, settings: OutputSettings, path: Path, mix: IO[bytes], total: int,
                 meter: LoudnessMeter, energy: float, sections: list[SectionSpan], cover: Cover | None, *,
                 split_dir: Path | None) -> MasterResult:
    """Master the `total` mixed samples in `mix` into `path` (and section files into `split_dir`)."""
    from higgs_cli.audio.master import MasteredStream
    from higgs_cli.project.building.review import Peaks

    profile = None if settings.profile in (None, NONE) else get_profile(settings.profile)
    tone = RoomTone(profile.tone_db, SAMPLE_RATE) if profile and (profile.head_tone_s or profile.tail_tone_s) \
        else None
    head = round(profile.head_tone_s * SAMPLE_RATE) if tone else 0
    tail = round(profile.tail_tone_s * SAMPLE_RATE) if tone else 0
    gain, target = _gain(profile, meter, energy, total + head + tail, settings.loudness)

    def read(source: IO[bytes], lo: int, hi: int) -> np.ndarray:  # from any thread: no shared file position
        return np.frombuffer(os.pread(source.fileno(), (hi - lo) * 4, lo * 4), dtype=np.float32)

    mastered = MasteredStream(lambda lo, hi: read(mix, lo, hi), total, gain=gain, loudness=target,
                              peak_db=settings.peak)
    ext = settings.format
    titles = {section.id: section.title or section.id for section in project.sections}
    chapters = _chapters(sections, titles, head / SAMPLE_RATE, (total + head + tail) / SAMPLE_RATE) \
        if ext in CHAPTER_FORMATS else ()
    peaks = Peaks(total + head + tail)
    bitrate = settings.bitrate if ext in CHAPTER_FORMATS else None
    with tempfile.TemporaryFile(dir=path.parent) as kept:
        def keep(blocks) -> Iterator[np.ndarray]:  # the mastered track, before room tone, for the section files
            for block in blocks:
                kept.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
                yield block

        stream = keep(mastered) if split_dir is not None else iter(mastered)
        if tone is not None:
            stream = tone.around(stream, head, tail)
        write_audio_blocks(path, peaks.watch(stream), tags=master_tags(project), bitrate_kbps=bitrate,
                           rate=settings.sample_rate, chapters=chapters, cover=cover)
        names: list[str] = []
        if split_dir is not None:
            kept.flush()
            names = section_file_names(sections, ext)
            for number, (span, name) in enumerate(zip(sections, names, strict=True), start=1):
                blocks = (read(kept, lo, min(lo + _BLOCK, span.end)) for lo in range(span.start, span.end, _BLOCK))
                if tone is not None:
                    blocks = tone.around(blocks, head, tail)
                tags = {**master_tags(project, titles.get(span.section, span.section)),
                        "track": f"{number}/{len(names)}"}  # players order and count the files
                write_audio_blocks(split_dir / name, blocks, tags=tags,
                                   bitrate_kbps=bitrate, rate=settings.sample_rate, cover=cover)
    return MasterResult(frames=total + head + tail, sample_rate=file_rate(ext, SAMPLE_RATE, settings.sample_rate),
                        report=mastered.report().to_dict(), peaks=peaks.to_list(), head_s=head / SAMPLE_RATE,
                        section_files=names)


def _chapters(sections: list[SectionSpan], titles: dict[str, str], head: float, length: float) -> list[Chapter]:
    """One chapter per section, titled by its `title:` (else its id): from its first line (the file's
    start for the first, so the head's room tone belongs to it) to the next one's, the last to the file's end."""
    out = []
    for i, span in enumerate(sections):
        start = 0.0 if i == 0 else head + span.start / SAMPLE_RATE
        end = length if i + 1 == len(sections) else head + sections[i + 1].start / SAMPLE_RATE
        out.append(Chapter(start=start, end=end, title=titles.get(span.section, span.section)))
    return out
