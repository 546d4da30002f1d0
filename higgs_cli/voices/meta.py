"""A voice's metadata: the folder layout, names, and voice.json read and written in one place.

    <root>/<name>/voice.json         name, transcript, description, duration, created,
                                     sample_rate, audio_sha256, format
    <root>/<name>/audio.wav          24 kHz mono PCM_16, peak-normalized to -1 dBFS
    <root>/<name>/codes/<codec>.npy  the recording as audio codes, cached per codec (see codes.py)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from higgs_cli import untrusted
from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import atomic_write_text, file_sha256, read_capped_text
from higgs_cli.voices.reference import MAX_SECONDS, MIN_SECONDS

FORMAT_VERSION = 1
META_FILE = "voice.json"
AUDIO_FILE = "audio.wav"
CODES_DIR = "codes"

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # always with fullmatch: `$` would match before a "\n"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_META_BYTES = 1 << 20  # voice.json holds a transcript of up to a minute of speech: kilobytes


def is_voice_name(name: object) -> bool:
    """Whether `name` is a valid voice name: the one rule for the CLI, archives, the library and the server."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def check_name(name: str) -> str:
    """Return `name` if it is a valid voice name, else raise UsageError suggesting one."""
    if is_voice_name(name):
        return name
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:64]
    hint = "use 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    if is_voice_name(suggestion):
        hint += f", for example '{suggestion}'"
    raise UsageError(f"{name!r} is not a valid voice name", hint=hint)


def clean_transcript(transcript: str) -> str:
    """The transcript with its whitespace collapsed; UsageError when nothing is left or it is not text."""
    text = " ".join(untrusted.check_utf8(transcript or "", "the transcript").split())
    if not text:
        raise UsageError("the transcript is empty",
                         hint="give the exact words spoken in the recording (--transcript or --transcript-file)")
    return text


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


def write_meta(folder: Path, meta: dict) -> None:
    """voice.json for the audio already in `folder`; sample rate, checksum and version come from here."""
    meta = {**meta, "sample_rate": SAMPLE_RATE, "audio_sha256": file_sha256(folder / AUDIO_FILE),
            "format": FORMAT_VERSION}
    atomic_write_text(folder / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")


def read_meta(folder: Path) -> dict:
    """voice.json of `folder` as it is on disk (for a rename, which keeps every field).

    Read as untrusted (it may come from an archive): a regular file of at most
    MAX_META_BYTES, plain JSON (no NaN, no number or nesting bombs, no lone
    surrogates: see higgs_cli.untrusted); else UsageError or json.JSONDecodeError.
    """
    return untrusted.loads(read_capped_text(folder / META_FILE, MAX_META_BYTES, what=META_FILE))


def read_voice(folder: Path, *, check_audio: bool = False) -> Voice:
    """The voice in `folder`; ValidationError listing every problem when it is not valid.

    `check_audio` also verifies the recording itself (checksum, rate, length).
    """
    problems: list[str] = []
    meta: dict = {}
    try:
        loaded = read_meta(folder) if (folder / META_FILE).exists() or (folder / META_FILE).is_symlink() else None
    except (OSError, UsageError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"{META_FILE} is not readable JSON ({getattr(error, 'message', error)})")
        loaded = None
    if loaded is None and not problems:
        problems.append(f"{META_FILE} is missing")
    elif isinstance(loaded, dict):
        meta = loaded
    elif loaded is not None:
        problems.append(f"{META_FILE} is not a JSON object")
    if meta:
        problems.extend(_meta_problems(meta, folder.name))
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


def _meta_problems(meta: dict, folder_name: str) -> list[str]:
    problems = []
    version = meta.get("format")
    if not isinstance(version, int) or version < 1:
        problems.append(f"{META_FILE}: 'format' must be a positive integer")
    elif version > FORMAT_VERSION:
        problems.append(f"{META_FILE} has format {version}, made by a newer higgs; upgrade higgs to use it")
    if meta.get("name") != folder_name:
        problems.append(f"{META_FILE} names the voice {meta.get('name')!r} but the folder is '{folder_name}'")
    if not isinstance(meta.get("transcript"), str) or not meta["transcript"].strip():
        problems.append(f"{META_FILE}: 'transcript' must be non-empty text")
    if not isinstance(meta.get("description"), (str, type(None))):
        problems.append(f"{META_FILE}: 'description' must be text or null")
    duration = meta.get("duration")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or not 0 < duration <= MAX_SECONDS:
        problems.append(f"{META_FILE}: 'duration' must be a number of seconds, at most {MAX_SECONDS:g}")
    if not isinstance(meta.get("created"), str):
        problems.append(f"{META_FILE}: 'created' must be an ISO date")
    if meta.get("sample_rate") != SAMPLE_RATE:
        problems.append(f"{META_FILE}: 'sample_rate' must be {SAMPLE_RATE}")
    if not isinstance(meta.get("audio_sha256"), str) or not _SHA256_RE.fullmatch(meta["audio_sha256"]):
        problems.append(f"{META_FILE}: 'audio_sha256' must be 64 lowercase hex digits")
    return problems


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
