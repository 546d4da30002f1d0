"""Title, artist and album tags in written audio files, through mutagen.

Each format gets the tags its players read: Vorbis comments in FLAC and OGG,
ID3v2.3 in MP3, and an ID3v2.3 `id3 ` chunk in WAV (what ffprobe, mutagen
and most media players read from WAV; libsndfile's RIFF INFO strings cannot
hold text beyond ASCII reliably). Text is stored as Unicode, so a title like
"游戏对白" survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from higgs_cli.errors import AudioError

TAG_KEYS = ("title", "artist", "album")
_ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB"}


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
            if text:
                out[key] = text
    return out


def write_tags(path: str | Path, fmt: str, tags: Mapping[str, str]) -> None:
    """Write `tags` (see `clean_tags`) into the finished file `path` of format `fmt` (wav, flac, ogg, mp3)."""
    writer = {"flac": _vorbis_comments, "ogg": _vorbis_comments, "mp3": _id3, "wav": _id3}.get(fmt)
    if writer is None:
        raise ValueError(f"no tag writer for {fmt!r}")
    if not tags:
        return
    try:
        from mutagen import MutagenError
    except ImportError:
        raise AudioError("cannot write tags: the mutagen package is missing",
                         hint="reinstall higgs (pip install higgs-cli) to get its dependencies") from None
    try:
        writer(Path(path), fmt, tags)
    except (OSError, MutagenError) as error:
        raise AudioError(f"could not write tags into {path}: {error}") from None


def _vorbis_comments(path: Path, fmt: str, tags: Mapping[str, str]) -> None:
    if fmt == "flac":
        from mutagen.flac import FLAC as Opener
    else:
        from mutagen.oggvorbis import OggVorbis as Opener
    audio = Opener(str(path))
    for key, value in tags.items():
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
        try:
            frames = id3.ID3(str(path))
        except id3.ID3NoHeaderError:
            frames = id3.ID3()
        save = lambda: frames.save(str(path), v2_version=3)  # noqa: E731 - same call shape as WAV's
    for key, value in tags.items():
        frames.add(getattr(id3, _ID3_FRAMES[key])(encoding=id3.Encoding.UTF8, text=[value]))
    save()
