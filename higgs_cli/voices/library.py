"""The voice library: named reference recordings with their transcripts.

One folder per voice under the library root (the layout and voice.json are in
meta.py; cached codes in codes.py; archives in archive.py; how a recording
becomes a reference in reference.py).

Every change holds the library lock and builds the new folder beside the
old one before swapping it in, so a failure leaves the library as it was;
what a killed process left half-done is tidied up (or put back) the next
time the lock is taken. Names starting with "." in the root are ours (the
lock, folders in flight) and are never voices.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from higgs_cli import untrusted
from higgs_cli.audio import io as audio_io
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import TMP_MARK, atomic_dir, exclusive_lock, file_sha256, refuse_dangling_link, sweep_temporaries
from higgs_cli.home import voices_dir
from higgs_cli.voices import archive as archives
from higgs_cli.voices.adapter import ADAPTER_DIR, copy_adapter, move_adapter
from higgs_cli.voices.codes import CodesCache
from higgs_cli.voices.meta import (
    AUDIO_FILE,
    CODES_DIR,
    SkippedFolder,
    Voice,
    check_name,
    clean_transcript,
    is_voice_name,
    read_meta,
    read_voice,
    write_meta,
)
from higgs_cli.voices.reference import prepare_reference

__all__ = ["CODES_LOCK_WAIT", "SkippedFolder", "Voice", "VoiceLibrary", "check_name", "default_root",
           "prepare_reference"]

CODES_LOCK_WAIT = 60.0  # seconds encoding a voice waits for another higgs process changing the library


def default_root() -> Path:
    """$HIGGS_HOME/voices, else the platform's user data folder for higgs (see higgs_cli.home)."""
    return voices_dir()


class VoiceLibrary:
    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    # -- reading -------------------------------------------------------------

    def scan(self) -> tuple[list[Voice], list[SkippedFolder]]:
        """Every valid voice sorted by name, and every folder skipped with the reason."""
        voices, skipped = [], []
        for folder in self._folders():
            if not is_voice_name(folder.name):
                skipped.append(SkippedFolder(folder, "the folder name is not a valid voice name"))
                continue
            try:
                voices.append(read_voice(folder))
            except ValidationError as error:
                skipped.append(SkippedFolder(folder, "; ".join(error.problems)))
        return voices, skipped

    def list(self) -> list[Voice]:
        return self.scan()[0]

    def get(self, name: str) -> Voice:
        return read_voice(self._existing(name))

    def load_audio(self, name: str) -> np.ndarray:
        """The voice's recording (24 kHz mono float32), checked against its checksum."""
        voice = self.get(name)
        if file_sha256(voice.audio_path) != voice.audio_sha256:
            raise _damaged(name, hint=f"remove it (`higgs voice remove {name} --yes`) and add it again")
        return audio_io.load_audio(voice.audio_path)

    def codes(self, name: str, codec_id: str, encode: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The recording as audio codes for `codec_id`, encoded once and cached in the voice's folder.

        A missing or damaged cache file is encoded again and replaced. Encoding
        holds the library lock (waiting up to CODES_LOCK_WAIT seconds for it), so
        a voice replaced meanwhile can never receive codes of its old recording.
        Caching is best effort: a read-only library still returns the codes.
        """
        cached = CodesCache(self.get(name).path / CODES_DIR).get(codec_id)
        if cached is not None:  # a folder only ever holds codes of its own recording
            return cached
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self._lock(timeout=CODES_LOCK_WAIT))
                writable = True
            except OSError:  # a read-only library: encode, do not cache
                writable = False
            # Looked up again under the lock: another process may have replaced the voice or encoded it.
            cache = CodesCache(self.get(name).path / CODES_DIR)
            return cache.get_or_encode(codec_id, lambda: self.load_audio(name), encode, store=writable)

    # -- changing ------------------------------------------------------------

    def add(self, name: str, audio_path: str | os.PathLike, transcript: str, *, description: str | None = None,
            trim: bool = False, force: bool = False) -> Voice:
        """Add a voice from any audio file; an existing voice is replaced only with `force`."""
        check_name(name)
        transcript = clean_transcript(transcript)
        description = untrusted.check_utf8(description or "", "the description").strip() or None
        if not force and (self.root / name).exists():
            raise _exists(name)
        from higgs_cli.storage.files import local_copy  # a path as it is, or an s3:// URL fetched for the while

        with local_copy(audio_path, what="voice audio") as local:
            audio = prepare_reference(local, trim=trim)
        with self._lock():
            if not force and (self.root / name).exists():
                raise _exists(name)
            with atomic_dir(self.root / name) as tmp:
                audio_io.write_audio(tmp / AUDIO_FILE, audio)
                _keep_codes(self.root / name, tmp)
                write_meta(tmp, {
                    "name": name, "transcript": transcript, "description": description,
                    "duration": round(audio.size / SAMPLE_RATE, 3),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                })
            return read_voice(self.root / name)

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
                if (voice.path / ADAPTER_DIR).is_dir():
                    shutil.copytree(voice.path / ADAPTER_DIR, tmp / ADAPTER_DIR)
                write_meta(tmp, {**read_meta(voice.path), "name": new})
            self._discard(voice.path)
            return read_voice(self.root / new)

    def set_adapter(self, name: str, source: Path, manifest: dict) -> Voice:
        """Store a trained adapter (peft's files in `source`) and its training manifest with voice `name`,
        replacing any adapter it had; the voice folder is rebuilt beside the old one and swapped in."""
        with self._lock():
            voice = self.get(name)
            with atomic_dir(voice.path) as tmp:
                shutil.copy2(voice.audio_path, tmp / AUDIO_FILE)
                if (voice.path / CODES_DIR).is_dir():
                    shutil.copytree(voice.path / CODES_DIR, tmp / CODES_DIR)
                copy_adapter(source, tmp, manifest)
                write_meta(tmp, read_meta(voice.path))
            return read_voice(voice.path)

    # -- sharing -------------------------------------------------------------

    def export(self, names: list[str] | None, archive: str | os.PathLike) -> list[Voice]:
        """Write voices (all of them when `names` is empty) to one .tar.gz or .zip archive.

        The archive may not be written inside the library: it would be packed
        into itself, or sit in a voice's folder that a later change replaces.
        """
        archive = Path(archive)
        archives.archive_kind(archive)
        archives.check_outside(archive, self.root)
        voices = [self.get(name) for name in dict.fromkeys(names)] if names else self.list()
        if not voices:
            raise UsageError("there are no voices to export",
                             hint="add one with `higgs voice add NAME AUDIO --transcript TEXT`")
        for voice in voices:
            if file_sha256(voice.audio_path) != voice.audio_sha256:
                raise _damaged(voice.name, hint="remove it or leave it out of the export")
        archives.write_archive(archive, voices)
        return voices

    def import_archive(self, archive: str | os.PathLike, *, force: bool = False) -> list[Voice]:
        """Install every voice in an archive made by `export`.

        The archive is read into a staging folder without trusting it (no
        absolute paths, no `..`, no links, no oversized members) and every
        voice is checked; if anything is wrong, nothing is installed.
        """
        archive = Path(archive)
        archives.check_readable(archive)
        with self._lock():
            staging = Path(tempfile.mkdtemp(prefix=f".import{TMP_MARK}.", dir=self.root))
            try:
                names = archives.extract(archive, staging)
                problems = []
                for name in names:
                    try:
                        read_voice(staging / name, check_audio=True)
                    except ValidationError as error:
                        problems.extend(f"{name}: {problem}" for problem in error.problems)
                if problems:
                    raise ValidationError(f"{archive} holds damaged voices; nothing was imported", problems)
                # A voice already here exactly as the archive has it is no clash: an import that was
                # killed halfway (kill -9) is completed by running it again, without --force.
                present = [name for name in names if (self.root / name).exists()]
                same = {name for name in present if _same_voice(self.root / name, staging / name)}
                clashes = [name for name in present if name not in same]
                if clashes and not force:
                    raise UsageError(f"the library already has {', '.join(clashes)}; nothing was imported",
                                     hint="add --force to replace them")
                for name in names:
                    if name in same:
                        continue
                    with atomic_dir(self.root / name) as tmp:
                        for file in archives.VOICE_FILES:
                            os.replace(staging / name / file, tmp / file)
                        move_adapter(staging / name, tmp)
                        _keep_codes(self.root / name, tmp)
                return [read_voice(self.root / name) for name in names]
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    # -- helpers -------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self, timeout: float = 0.0) -> Iterator[None]:
        """Hold the library lock; first tidy up after any higgs process killed while changing the library."""
        self._check_root()
        with exclusive_lock(self.root / ".lock", what="the voice library", timeout=timeout):
            sweep_temporaries(self.root)
            yield

    def _check_root(self) -> None:
        """UsageError when the library root cannot be a folder (a file, or a link that points nowhere)."""
        refuse_dangling_link(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"the voice library {self.root} is not a folder",
                             hint="move that file away, or set HIGGS_HOME to another folder")

    def _folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for entry in sorted(self.root.iterdir()):
            if not entry.name.startswith(".") and entry.is_dir():
                yield entry

    def _existing(self, name: str) -> Path:
        folder = self.root / name
        if is_voice_name(name) and folder.is_dir():
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


def _keep_codes(old: Path, new: Path) -> None:
    """Copy the voice folder `old`'s cached codes into the folder `new` replacing it, when both hold
    the same recording (a voice added or imported again with --force, issue 16.3).

    Codes depend only on the recording, so they stay valid, and `project status`
    can still tell the lines rendered with them. Best effort: a copy that fails
    only means encoding again; a folder only ever gets codes of its own audio.
    """
    if not (old / CODES_DIR).is_dir() or (new / CODES_DIR).exists():
        return
    with contextlib.suppress(OSError):
        if file_sha256(old / AUDIO_FILE) == file_sha256(new / AUDIO_FILE):
            shutil.copytree(old / CODES_DIR, new / CODES_DIR)


def _same_voice(installed: Path, staged: Path) -> bool:
    """Whether the library folder `installed` holds the voice `staged` unchanged (metadata and recording)."""
    with contextlib.suppress(OSError, UsageError, ValueError):
        return (read_meta(installed) == read_meta(staged)
                and file_sha256(installed / AUDIO_FILE) == file_sha256(staged / AUDIO_FILE))
    return False


def _exists(name: str) -> UsageError:
    return UsageError(f"voice '{name}' already exists", hint="add --force to replace it, or choose another name")


def _damaged(name: str, *, hint: str) -> ValidationError:
    return ValidationError(f"voice '{name}' is damaged", [f"{AUDIO_FILE} does not match its checksum"], hint=hint)
