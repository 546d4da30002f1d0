"""Voice archives: export to and import from .tar.gz/.tgz/.zip, never trusting what is read.

An archive holds `<voice>/voice.json` and `<voice>/audio.wav` per voice and
nothing else. Reading never uses the archive libraries' extractors: every
member's path is checked and every byte counted here, within fixed limits.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import atomic_path
from higgs_cli.voices.adapter import ADAPTER_DIR, ADAPTER_FILES
from higgs_cli.voices.meta import AUDIO_FILE, META_FILE, Voice, is_voice_name

MAX_MEMBER_BYTES = 16 * 1024 * 1024  # a 60 s reference is under 3 MiB
MAX_ADAPTER_BYTES = 512 * 1024 * 1024  # LoRA weights: about 100 MB at rank 16 on the full model's defaults
MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024

VOICE_FILES = (META_FILE, AUDIO_FILE)  # what an archive carries of each voice (codes are made again)
_SUFFIXES = {".tar.gz": "tar", ".tgz": "tar", ".zip": "zip"}


def archive_kind(archive: Path) -> str:
    """"tar" or "zip" from the archive's name; UsageError for any other name."""
    name = archive.name.lower()
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    raise UsageError(f"cannot write {archive}: an archive must end in .tar.gz, .tgz or .zip")


def check_outside(archive: Path, folder: Path) -> None:
    """Refuse to write `archive` inside `folder`, the folder it archives (it would pack or change itself)."""
    where = archive.parent.resolve() / archive.name  # where the rename puts it: links above it followed
    if where.is_relative_to(folder.resolve()):
        raise UsageError(f"cannot write {archive}: it is inside the voice library ({folder}) that it archives",
                         hint="write the archive somewhere outside the library, e.g. in the current folder")


def _members_of(voice: Voice) -> list[str]:
    """The files an archive carries of a voice, relative to its folder: its recording and metadata, and
    its adapter's files when it has a trained adapter."""
    adapter = [f"{ADAPTER_DIR}/{name}" for name in ADAPTER_FILES if (voice.path / ADAPTER_DIR / name).is_file()]
    return [*VOICE_FILES, *adapter]


def _carried(parts: tuple[str, ...]) -> bool:
    return (len(parts) == 2 and parts[1] in VOICE_FILES) or (
        len(parts) == 3 and parts[1] == ADAPTER_DIR and parts[2] in ADAPTER_FILES)


def _limit(parts: tuple[str, ...]) -> int:
    return MAX_ADAPTER_BYTES if len(parts) == 3 and parts[1] == ADAPTER_DIR else MAX_MEMBER_BYTES


def write_archive(archive: Path, voices: list[Voice]) -> None:
    """Pack the voice files of `voices` into `archive` in one rename (no half-written archive)."""
    kind = archive_kind(archive)
    with atomic_path(archive, suffix=".tmp") as tmp:
        if kind == "tar":
            with tarfile.open(tmp, "w:gz") as tar:
                for voice in voices:
                    for file in _members_of(voice):
                        tar.add(voice.path / file, arcname=f"{voice.name}/{file}", filter=_plain_tarinfo)
        else:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                for voice in voices:
                    for file in _members_of(voice):
                        zf.write(voice.path / file, arcname=f"{voice.name}/{file}")


def check_readable(archive: Path) -> None:
    """UsageError unless `archive` is an existing file (a link that points nowhere is named as one)."""
    if archive.is_symlink() and not archive.exists():
        raise UsageError(f"archive {archive} is a link that points nowhere", hint="give the archive file itself")
    if not archive.is_file():
        raise UsageError(f"archive {archive} does not exist" if not archive.exists() else f"{archive} is not a file")


@dataclass
class _Member:
    name: str
    kind: str  # "file", "dir" or "link" (links and anything else special)
    size: int
    open: Callable[[], IO[bytes]]


def _tar_members(archive: Path) -> Iterator[_Member]:
    with tarfile.open(archive, "r:*") as tar:
        for info in tar:
            kind = "file" if info.isreg() else "dir" if info.isdir() else "link"
            yield _Member(info.name, kind, info.size, lambda info=info: tar.extractfile(info))


def _zip_members(archive: Path) -> Iterator[_Member]:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            kind = "dir" if info.is_dir() else "link" if mode and (mode & 0o170000) not in (0, 0o100000) else "file"
            yield _Member(info.filename, kind, info.file_size, lambda info=info: zf.open(info))


def extract(archive: Path, dest: Path) -> list[str]:
    """Copy the voice files of `archive` into `dest`; return the voice names found.

    Any unsafe member (an absolute path, `..`, a link, a member or total over
    the limits, a name twice) rejects the whole archive with every problem listed.
    """
    problems: list[str] = []
    names: list[str] = []
    seen: set[tuple[str, ...]] = set()
    budget = MAX_ARCHIVE_BYTES
    try:
        if zipfile.is_zipfile(archive):
            members = _zip_members(archive)
        elif tarfile.is_tarfile(archive):
            members = _tar_members(archive)
        else:
            raise UsageError(f"{archive} is not a .tar.gz or .zip archive",
                             hint="use an archive made by `higgs voice export`")
        with contextlib.closing(members):
            for count, member in enumerate(members, start=1):
                if count > MAX_ARCHIVE_MEMBERS:
                    problems.append(f"more than {MAX_ARCHIVE_MEMBERS} members")
                    break
                parts, problem = _member_parts(member)
                if problem:
                    problems.append(f"{member.name!r}: {problem}")
                    continue
                if member.kind != "file" or not _carried(parts):
                    continue  # folders and files that are not part of a voice are left out
                if not is_voice_name(parts[0]):
                    problems.append(f"{member.name!r}: {parts[0]!r} is not a valid voice name")
                    continue
                if parts in seen:
                    problems.append(f"{member.name!r}: appears twice")
                    continue
                seen.add(parts)
                (dest / Path(*parts[:-1])).mkdir(parents=True, exist_ok=True)
                limit = min(_limit(parts), budget)
                written = _copy_limited(member, dest / Path(*parts), limit)
                if written is None:
                    problems.append(f"{member.name!r}: larger than {limit} bytes")
                    continue
                budget -= written
                if parts[0] not in names:
                    names.append(parts[0])
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        raise ValidationError(f"{archive} is damaged; nothing was imported", [str(error) or type(error).__name__],
                              hint="export the voices again") from None
    if problems:
        raise ValidationError(f"{archive} is not a safe voice archive; nothing was imported", problems)
    if not names:
        raise ValidationError(f"{archive} holds no voices; nothing was imported",
                              [f"expected members named <voice>/{META_FILE} and <voice>/{AUDIO_FILE}"])
    return names


def _member_parts(member: _Member) -> tuple[tuple[str, ...], str | None]:
    raw = member.name
    if "\\" in raw:
        return (), "backslashes in a member name"
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        return (), "an absolute path"
    parts = tuple(part for part in PurePosixPath(raw).parts if part not in ("", "."))
    if ".." in parts:
        return (), "a path that leaves the archive ('..')"
    if member.kind == "link":
        return (), "a link or special file"
    if member.size > _limit(parts):
        return (), f"larger than {_limit(parts)} bytes"
    return parts, None


def _copy_limited(member: _Member, target: Path, limit: int) -> int | None:
    """Copy at most `limit` bytes; None (and nothing kept) when the member holds more."""
    written = 0
    with member.open() as source, open(target, "wb") as sink:
        while block := source.read(1 << 20):
            written += len(block)
            if written > limit:
                break
            sink.write(block)
    if written > limit:
        target.unlink()
        return None
    return written


def _plain_tarinfo(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner names or ids from this machine in a shared archive."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644 if info.isreg() else 0o755
    return info
