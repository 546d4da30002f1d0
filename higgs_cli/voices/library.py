"""The voice library: named reference recordings with their transcripts.

One folder per voice under the library root:

    <root>/<name>/voice.json         name, transcript, description, duration, created,
                                     sample_rate, audio_sha256, format
    <root>/<name>/audio.wav          24 kHz mono PCM_16, peak-normalized to -1 dBFS
    <root>/<name>/codes/<codec>.npy  the recording as audio codes, cached per codec

Every change holds the library lock and builds the new folder beside the
old one before swapping it in, so a failure leaves the library as it was;
what a killed process left half-done is tidied up (or put back) the next
time the lock is taken. Names starting with "." in the root are ours (the
lock, folders in flight) and are never voices.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import soundfile as sf

from higgs_cli.audio import io as audio_io
from higgs_cli.audio.master import trim_silence
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import AudioError, HiggsError, UsageError, ValidationError
from higgs_cli.fsutil import (
    TMP_MARK,
    atomic_dir,
    atomic_path,
    atomic_write_text,
    exclusive_lock,
    file_sha256,
    sweep_temporaries,
)

FORMAT_VERSION = 1
META_FILE = "voice.json"
AUDIO_FILE = "audio.wav"
CODES_DIR = "codes"

MIN_SECONDS = 0.5
MAX_SECONDS = 60.0
CODES_LOCK_WAIT = 60.0  # seconds encoding a voice waits for another higgs process changing the library
READ_LIMIT_SECONDS = 600.0  # longer files are refused before decoding all of them, even with --trim
REFERENCE_PEAK_DB = -1.0

MAX_MEMBER_BYTES = 16 * 1024 * 1024  # a 60 s reference is under 3 MiB
MAX_ARCHIVE_MEMBERS = 10_000
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CODEC_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_ARCHIVE_SUFFIXES = {".tar.gz": "tar", ".tgz": "tar", ".zip": "zip"}
_REFERENCE_HINT = "a voice reference is 3-30 s of clear speech from one speaker"


def default_root() -> Path:
    """$HIGGS_HOME/voices, else the platform's user data folder for higgs."""
    home = os.environ.get("HIGGS_HOME")
    if home:
        return Path(home).expanduser() / "voices"
    import platformdirs

    return Path(platformdirs.user_data_dir("higgs")) / "voices"


def check_name(name: str) -> str:
    """Return `name` if it is a valid voice name, else raise UsageError suggesting one."""
    if NAME_RE.match(name):
        return name
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:64]
    hint = "use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    if NAME_RE.match(suggestion):
        hint += f", for example '{suggestion}'"
    raise UsageError(f"'{name}' is not a valid voice name", hint=hint)


@dataclass(frozen=True)
class Voice:
    name: str
    transcript: str
    description: str | None
    duration: float  # seconds
    created: str  # ISO 8601, UTC
    audio_sha256: str
    path: Path  # the voice's folder

    @property
    def audio_path(self) -> Path:
        return self.path / AUDIO_FILE

    def to_dict(self) -> dict:
        return {"name": self.name, "transcript": self.transcript, "description": self.description,
                "duration": self.duration, "created": self.created, "audio_sha256": self.audio_sha256,
                "path": str(self.path)}


@dataclass(frozen=True)
class SkippedFolder:
    """A folder in the library that is not a usable voice, and why."""

    path: Path
    reason: str


class VoiceLibrary:
    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # -- reading -------------------------------------------------------------

    def scan(self) -> tuple[list[Voice], list[SkippedFolder]]:
        """Every valid voice sorted by name, and every folder skipped with the reason."""
        voices, skipped = [], []
        for folder in self._folders():
            if not NAME_RE.match(folder.name):
                skipped.append(SkippedFolder(folder, "the folder name is not a valid voice name"))
                continue
            try:
                voices.append(_read_voice(folder))
            except ValidationError as error:
                skipped.append(SkippedFolder(folder, "; ".join(error.problems)))
        return voices, skipped

    def list(self) -> list[Voice]:
        return self.scan()[0]

    def get(self, name: str) -> Voice:
        return _read_voice(self._existing(name))

    def load_audio(self, name: str) -> np.ndarray:
        """The voice's recording (24 kHz mono float32), checked against its checksum."""
        voice = self.get(name)
        if file_sha256(voice.audio_path) != voice.audio_sha256:
            raise ValidationError(f"voice '{name}' is damaged", [f"{AUDIO_FILE} does not match its checksum"],
                                  hint=f"remove it (`higgs voice remove {name} --yes`) and add it again")
        return audio_io.load_audio(voice.audio_path)

    def codes(self, name: str, codec_id: str, encode: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The recording as audio codes for `codec_id`, encoded once and cached in the voice's folder.

        A missing or unreadable cache file is encoded again and replaced. Encoding
        holds the library lock (waiting up to CODES_LOCK_WAIT seconds for it), so
        a voice replaced meanwhile can never receive codes of its old recording.
        Caching is best effort: a read-only library still returns the codes.
        """
        if not _CODEC_ID_RE.match(codec_id):
            raise ValueError(f"codec id {codec_id!r} cannot be a file name")
        cached = _read_codes(self.get(name).path / CODES_DIR / f"{codec_id}.npy")
        if cached is not None:  # a folder only ever holds codes of its own recording
            return cached
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self._lock(timeout=CODES_LOCK_WAIT))
                writable = True
            except OSError:  # a read-only library: encode, do not cache
                writable = False
            voice = self.get(name)
            cache = voice.path / CODES_DIR / f"{codec_id}.npy"
            cached = _read_codes(cache)  # another process may have encoded it while we waited
            if cached is not None:
                return cached
            codes = np.asarray(encode(self.load_audio(name)))
            if not _valid_codes(codes):
                raise ValueError(f"the encoder returned unusable codes: shape {codes.shape}, dtype {codes.dtype}")
            if writable:
                with contextlib.suppress(OSError, HiggsError):
                    cache.parent.mkdir(exist_ok=True)
                    with atomic_path(cache) as tmp, open(tmp, "wb") as handle:
                        np.save(handle, codes, allow_pickle=False)
        return codes

    # -- changing ------------------------------------------------------------

    def add(self, name: str, audio_path: str | os.PathLike, transcript: str, *, description: str | None = None,
            trim: bool = False, force: bool = False) -> Voice:
        """Add a voice from any audio file; an existing voice is replaced only with `force`."""
        check_name(name)
        transcript = _clean_transcript(transcript)
        description = (description or "").strip() or None
        if not force and (self.root / name).exists():
            raise _exists(name)
        audio = prepare_reference(audio_path, trim=trim)
        with self._lock():
            if not force and (self.root / name).exists():
                raise _exists(name)
            with atomic_dir(self.root / name) as tmp:
                audio_io.write_audio(tmp / AUDIO_FILE, audio)
                _write_meta(tmp, {
                    "name": name, "transcript": transcript, "description": description,
                    "duration": round(audio.size / SAMPLE_RATE, 3),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                })
            return _read_voice(self.root / name)

    def remove(self, name: str) -> None:
        """Delete a voice (also a damaged one)."""
        with self._lock():
            self._discard(self._existing(name))

    def rename(self, old: str, new: str, *, force: bool = False) -> Voice:
        """Give a voice a new name; an existing voice called `new` is replaced only with `force`."""
        check_name(new)
        with self._lock():
            voice = self.get(old)
            if new == old:
                return voice
            if not force and (self.root / new).exists():
                raise _exists(new)
            with atomic_dir(self.root / new) as tmp:
                shutil.copy2(voice.audio_path, tmp / AUDIO_FILE)
                if (voice.path / CODES_DIR).is_dir():
                    shutil.copytree(voice.path / CODES_DIR, tmp / CODES_DIR)
                meta = json.loads((voice.path / META_FILE).read_text(encoding="utf-8"))
                _write_meta(tmp, {**meta, "name": new})
            self._discard(voice.path)
            return _read_voice(self.root / new)

    # -- sharing -------------------------------------------------------------

    def export(self, names: list[str] | None, archive: str | os.PathLike) -> list[Voice]:
        """Write voices (all of them when `names` is empty) to one .tar.gz or .zip archive."""
        archive = Path(archive)
        kind = _archive_kind(archive)
        voices = [self.get(name) for name in dict.fromkeys(names)] if names else self.list()
        if not voices:
            raise UsageError("there are no voices to export",
                             hint="add one with `higgs voice add NAME AUDIO --transcript TEXT`")
        for voice in voices:
            if file_sha256(voice.audio_path) != voice.audio_sha256:
                raise ValidationError(f"voice '{voice.name}' is damaged", [f"{AUDIO_FILE} does not match its checksum"],
                                      hint="remove it or leave it out of the export")
        with atomic_path(archive, suffix=".tmp") as tmp:
            if kind == "tar":
                with tarfile.open(tmp, "w:gz") as tar:
                    for voice in voices:
                        for file in (META_FILE, AUDIO_FILE):
                            tar.add(voice.path / file, arcname=f"{voice.name}/{file}", filter=_plain_tarinfo)
            else:
                with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                    for voice in voices:
                        for file in (META_FILE, AUDIO_FILE):
                            zf.write(voice.path / file, arcname=f"{voice.name}/{file}")
        return voices

    def import_archive(self, archive: str | os.PathLike, *, force: bool = False) -> list[Voice]:
        """Install every voice in an archive made by `export`.

        The archive is read into a staging folder without trusting it (no
        absolute paths, no `..`, no links, no oversized members) and every
        voice is checked; if anything is wrong, nothing is installed.
        """
        archive = Path(archive)
        if not archive.is_file():
            raise UsageError(f"archive {archive} does not exist" if not archive.exists()
                             else f"{archive} is not a file")
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            staging = Path(tempfile.mkdtemp(prefix=f".import{TMP_MARK}.", dir=self.root))
            try:
                names = _extract(archive, staging)
                problems = []
                for name in names:
                    try:
                        _read_voice(staging / name, check_audio=True)
                    except ValidationError as error:
                        problems.extend(f"{name}: {problem}" for problem in error.problems)
                if problems:
                    raise ValidationError(f"{archive} holds damaged voices; nothing was imported", problems)
                clashes = [name for name in names if (self.root / name).exists()]
                if clashes and not force:
                    raise UsageError(f"the library already has {', '.join(clashes)}; nothing was imported",
                                     hint="add --force to replace them")
                for name in names:
                    with atomic_dir(self.root / name) as tmp:
                        for file in (META_FILE, AUDIO_FILE):
                            os.replace(staging / name / file, tmp / file)
                return [_read_voice(self.root / name) for name in names]
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    # -- helpers -------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, timeout: float = 0.0) -> Iterator[None]:
        """Hold the library lock; first tidy up after any higgs process killed while changing the library."""
        with exclusive_lock(self.root / ".lock", what="the voice library", timeout=timeout):
            sweep_temporaries(self.root)
            yield

    def _folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if not entry.name.startswith(".") and entry.is_dir():
                yield entry

    def _existing(self, name: str) -> Path:
        folder = self.root / name
        if NAME_RE.match(name) and folder.is_dir():
            return folder
        known = [folder.name for folder in self._folders()]
        close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
        elif known:
            hint = "run `higgs voice list` to see the voices"
        else:
            hint = "the library is empty; add a voice with `higgs voice add NAME AUDIO --transcript TEXT`"
        raise UsageError(f"no voice named '{name}'", hint=hint)

    def _discard(self, folder: Path) -> None:
        """Move the folder out of the way in one rename, then delete it."""
        trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}{TMP_MARK}.removed.", dir=self.root))
        os.replace(folder, trash / folder.name)
        shutil.rmtree(trash, ignore_errors=True)


def prepare_reference(audio_path: str | os.PathLike, *, trim: bool = False) -> np.ndarray:
    """Any audio file as a reference: 24 kHz mono, edges trimmed if asked, peak at -1 dBFS."""
    audio = audio_io.load_audio(audio_path, max_seconds=READ_LIMIT_SECONDS)
    if audio_io.is_silent(audio):
        raise AudioError(f"{audio_path} is silent", hint=_REFERENCE_HINT)
    if trim:
        audio = trim_silence(audio)
    seconds = audio_io.duration(audio)
    after = " after trimming" if trim else ""
    if seconds < MIN_SECONDS:
        raise AudioError(f"{audio_path} has {seconds:.2f} s of audio{after}; a voice needs at least {MIN_SECONDS} s",
                         hint=_REFERENCE_HINT)
    if seconds > MAX_SECONDS:
        raise AudioError(f"{audio_path} is {seconds:.1f} s long{after}; a voice can be at most {MAX_SECONDS:g} s",
                         hint=_REFERENCE_HINT + ("" if trim else "; --trim cuts silent edges"))
    gain = 10.0 ** (REFERENCE_PEAK_DB / 20.0) / float(np.max(np.abs(audio)))
    return (audio * gain).astype(np.float32)


def _clean_transcript(transcript: str) -> str:
    text = " ".join((transcript or "").split())
    if not text:
        raise UsageError("the transcript is empty",
                         hint="give the exact words spoken in the recording (--transcript or --transcript-file)")
    return text


def _exists(name: str) -> UsageError:
    return UsageError(f"voice '{name}' already exists", hint="add --force to replace it, or choose another name")


def _write_meta(folder: Path, meta: dict) -> None:
    """voice.json for the audio already in `folder`; sample rate, checksum and version come from here."""
    meta = {**meta, "sample_rate": SAMPLE_RATE, "audio_sha256": file_sha256(folder / AUDIO_FILE),
            "format": FORMAT_VERSION}
    atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def _read_voice(folder: Path, *, check_audio: bool = False) -> Voice:
    """The voice in `folder`; ValidationError listing every problem when it is not valid.

    `check_audio` also verifies the recording itself (checksum, rate, length).
    """
    problems: list[str] = []
    meta: dict = {}
    try:
        loaded = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{META_FILE} is missing")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"{META_FILE} is not readable JSON ({error})")
    else:
        if isinstance(loaded, dict):
            meta = loaded
        else:
            problems.append(f"{META_FILE} is not a JSON object")
    if meta:
        version = meta.get("format")
        if not isinstance(version, int) or version < 1:
            problems.append(f"{META_FILE}: 'format' must be a positive integer")
        elif version > FORMAT_VERSION:
            problems.append(f"{META_FILE} has format {version}, made by a newer higgs; upgrade higgs to use it")
        if meta.get("name") != folder.name:
            problems.append(f"{META_FILE} names the voice {meta.get('name')!r} but the folder is '{folder.name}'")
        if not isinstance(meta.get("transcript"), str) or not meta["transcript"].strip():
            problems.append(f"{META_FILE}: 'transcript' must be non-empty text")
        if not isinstance(meta.get("description"), (str, type(None))):
            problems.append(f"{META_FILE}: 'description' must be text or null")
        if not isinstance(meta.get("duration"), (int, float)) or isinstance(meta.get("duration"), bool):
            problems.append(f"{META_FILE}: 'duration' must be a number of seconds")
        if not isinstance(meta.get("created"), str):
            problems.append(f"{META_FILE}: 'created' must be an ISO date")
        if meta.get("sample_rate") != SAMPLE_RATE:
            problems.append(f"{META_FILE}: 'sample_rate' must be {SAMPLE_RATE}")
        if not isinstance(meta.get("audio_sha256"), str) or not _SHA256_RE.match(meta["audio_sha256"]):
            problems.append(f"{META_FILE}: 'audio_sha256' must be 64 lowercase hex digits")
    audio = folder / AUDIO_FILE
    if not audio.is_file():
        problems.append(f"{AUDIO_FILE} is missing")
    elif check_audio and not problems:
        problems.extend(_audio_problems(audio, meta["audio_sha256"]))
    if problems:
        raise ValidationError(f"voice folder {folder} is not a valid voice", problems,
                              hint=f"remove it (`higgs voice remove {folder.name} --yes`) and add the voice again")
    return Voice(name=folder.name, transcript=meta["transcript"], description=meta.get("description"),
                 duration=float(meta["duration"]), created=meta["created"], audio_sha256=meta["audio_sha256"],
                 path=folder)


def _audio_problems(audio: Path, sha256: str) -> list[str]:
    if file_sha256(audio) != sha256:
        return [f"{AUDIO_FILE} does not match its checksum"]
    try:
        info = sf.info(str(audio))
    except (sf.LibsndfileError, RuntimeError):
        return [f"{AUDIO_FILE} is not readable audio"]
    problems = []
    if info.samplerate != SAMPLE_RATE or info.channels != 1:
        problems.append(f"{AUDIO_FILE} must be {SAMPLE_RATE} Hz mono, not {info.samplerate} Hz x {info.channels}")
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        problems.append(f"{AUDIO_FILE} is {seconds:.2f} s long; a voice is {MIN_SECONDS}-{MAX_SECONDS:g} s")
    return problems


def _read_codes(path: Path) -> np.ndarray | None:
    try:
        codes = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception:  # any unreadable cache is simply encoded again
        return None
    return codes if _valid_codes(codes) else None


def _valid_codes(codes: object) -> bool:
    return (isinstance(codes, np.ndarray) and codes.ndim == 2 and codes.dtype.kind in "iu" and codes.size > 0
            and int(codes.min()) >= 0)


# -- archives ----------------------------------------------------------------

def _archive_kind(archive: Path) -> str:
    name = archive.name.lower()
    for suffix, kind in _ARCHIVE_SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    raise UsageError(f"cannot write {archive}: an archive must end in .tar.gz, .tgz or .zip")


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


def _extract(archive: Path, dest: Path) -> list[str]:
    """Copy the voice files of `archive` into `dest`; return the voice names found.

    Never uses the archive libraries' extractors: every member's path is checked
    and every byte counted here. Any unsafe member rejects the whole archive.
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
                if member.kind != "file" or len(parts) != 2 or parts[1] not in (META_FILE, AUDIO_FILE):
                    continue  # folders and files that are not part of a voice are left out
                if not NAME_RE.match(parts[0]):
                    problems.append(f"{member.name!r}: '{parts[0]}' is not a valid voice name")
                    continue
                if parts in seen:
                    problems.append(f"{member.name!r}: appears twice")
                    continue
                seen.add(parts)
                (dest / parts[0]).mkdir(exist_ok=True)
                written = _copy_limited(member, dest / parts[0] / parts[1], min(MAX_MEMBER_BYTES, budget))
                if written is None:
                    problems.append(f"{member.name!r}: larger than {min(MAX_MEMBER_BYTES, budget)} bytes")
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
    if member.size > MAX_MEMBER_BYTES:
        return (), f"larger than {MAX_MEMBER_BYTES} bytes"
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
