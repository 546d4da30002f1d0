"""Title, artist, album and composer tags, chapters and cover art in written audio files, through mutagen.

Each format gets the tags its players read: Vorbis comments in FLAC and OGG,
ID3v2.3 in MP3, and an ID3v2.3 `id3 ` chunk in WAV (what ffprobe, mutagen
and most media players read from WAV; libsndfile's RIFF INFO strings cannot
hold text beyond ASCII reliably), iTunes atoms in M4B. Text is stored as
Unicode, so a title like "游戏对白" survives. MP3 chapters are ID3 CHAP frames
under one top-level CTOC (the ID3v2 chapter addendum, which ffprobe and
podcast apps read); M4B chapters are written by the muxer (mp4.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from higgs_cli.errors import AudioError

if TYPE_CHECKING:
    from higgs_cli.audio.mp4 import Chapter

TAG_KEYS = ("title", "artist", "album", "composer", "track")
"""`track` is "N/TOTAL" (a section file's place among them): ID3 TRCK, MP4 trkn, Vorbis TRACKNUMBER and TRACKTOTAL."""
_ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "composer": "TCOM", "track": "TRCK"}
_MP4_ATOMS = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "composer": "\xa9wrt"}


@dataclass(frozen=True)
class Cover:
    """A cover image to embed: its bytes and MIME type (image/jpeg or image/png)."""

    data: bytes
    mime: str


def clean_tags(tags: Mapping[str, str | None] | None) -> dict[str, str]:
    """The tags worth writing: known keys, non-empty text with no control characters."""
    if not tags:
        return {}
    unknown = sorted(set(tags) - set(TAG_KEYS))
    if unknown:
        raise ValueError(f"unknown audio tags {unknown}; known: {list(TAG_KEYS)}")
    out = {}
    for key in TAG_KEYS:
        value = tags.get(key)
        if value is not None:
            text = " ".join(str(value).split())  # newlines and tabs have no place in a tag
            if key == "track" and text and not _track(text):
                raise ValueError(f"a track tag is N/TOTAL with 1 <= N <= TOTAL, got {text!r}")
            if text:
                out[key] = text
    return out


def _track(text: str) -> tuple[int, int] | None:
    """(N, TOTAL) of a "N/TOTAL" track tag; None when it is not one."""
    number, _, total = text.partition("/")
    if not (number.isdigit() and total.isdigit()) or not 1 <= int(number) <= int(total):
        return None
    return int(number), int(total)


def write_tags(path: str | Path, fmt: str, tags: Mapping[str, str]) -> None:
    """Write `tags` (see `clean_tags`) into the finished file `path` of format `fmt` (wav, flac, ogg, mp3)."""
    writer = {"flac": _vorbis_comments, "ogg": _vorbis_comments, "mp3": _id3, "wav": _id3, "m4b": _mp4}.get(fmt)
    if writer is None:
        raise ValueError(f"no tag writer for {fmt!r}")
    if not tags:
        return
    _mutagen_call(path, "tags", lambda: writer(Path(path), fmt, tags))


def write_chapters(path: str | Path, chapters: Sequence[Chapter]) -> None:
    """Add `chapters` to the MP3 `path` as ID3 CHAP frames (times in ms) under one ordered, top-level CTOC."""
    if not chapters:
        return

    def add() -> None:
        from mutagen import id3

        frames = _id3_of(Path(path))
        ids = [f"chp{i}" for i in range(len(chapters))]
        frames.add(id3.CTOC(element_id="toc", flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
                            child_element_ids=ids,
                            sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text=["Chapters"])]))
        for element, chapter in zip(ids, chapters, strict=True):
            frames.add(id3.CHAP(element_id=element, start_time=round(chapter.start * 1000),
                                end_time=round(chapter.end * 1000),
                                sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text=[chapter.title])]))
        frames.save(str(path), v2_version=3)

    _mutagen_call(path, "chapters", add)


def write_cover(path: str | Path, fmt: str, cover: Cover | None) -> None:
    """Embed `cover` in the MP3 (an APIC front cover) or M4B (`covr`) `path`; nothing for other formats."""
    if cover is None or fmt not in ("mp3", "m4b"):
        return

    def add() -> None:
        if fmt == "mp3":
            from mutagen import id3

            frames = _id3_of(Path(path))
            frames.add(id3.APIC(encoding=id3.Encoding.UTF8, mime=cover.mime, type=id3.PictureType.COVER_FRONT,
                                desc="Cover", data=cover.data))
            frames.save(str(path), v2_version=3)
        else:
            from mutagen.mp4 import MP4, MP4Cover

            audio = MP4(str(path))
            kind = MP4Cover.FORMAT_PNG if cover.mime == "image/png" else MP4Cover.FORMAT_JPEG
            audio["covr"] = [MP4Cover(cover.data, imageformat=kind)]
            audio.save()

    _mutagen_call(path, "the cover image", add)


def _mutagen_call(path: str | Path, what: str, call) -> None:
    try:
        from mutagen import MutagenError
    except ImportError:
        raise AudioError(f"cannot write {what}: the mutagen package is missing",
                         hint="reinstall higgs (pip install higgs-cli) to get its dependencies") from None
    try:
        call()
    except (OSError, MutagenError) as error:
        raise AudioError(f"could not write {what} into {path}: {error}") from None


def _id3_of(path: Path):
    from mutagen import id3

    try:
        return id3.ID3(str(path))
    except id3.ID3NoHeaderError:
        return id3.ID3()


def _mp4(path: Path, fmt: str, tags: Mapping[str, str]) -> None:
    from mutagen.mp4 import MP4

    audio = MP4(str(path))
    for key, value in tags.items():
        if key == "track":
            audio["trkn"] = [_track(value)]
        else:
            audio[_MP4_ATOMS[key]] = [value]
    audio.save()


def _vorbis_comments(path: Path, fmt: str, tags: Mapping[str, str]) -> None:
    if fmt == "flac":
        from mutagen.flac import FLAC as Opener
    else:
        from mutagen.oggvorbis import OggVorbis as Opener
    audio = Opener(str(path))
    for key, value in tags.items():
        if key == "track":
            number, total = _track(value)
            audio["TRACKNUMBER"], audio["TRACKTOTAL"] = [str(number)], [str(total)]
        else:
            audio[key.upper()] = [value]
    audio.save()


def _id3(path: Path, fmt: str, tags: Mapping[str, str]) -> None:
    from mutagen import id3

    if fmt == "wav":
        from mutagen.wave import WAVE

        audio = WAVE(str(path))
        if audio.tags is None:
            audio.add_tags()
        frames, save = audio.tags, lambda: audio.save(v2_version=3)
    else:
        frames = _id3_of(path)
        save = lambda: frames.save(str(path), v2_version=3)  # noqa: E731 - same call shape as WAV's
    for key, value in tags.items():
        frames.add(getattr(id3, _ID3_FRAMES[key])(encoding=id3.Encoding.UTF8, text=[value]))
    save()
