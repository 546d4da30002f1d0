"""What DATA names, as recordings with their transcripts (or none): a folder, a sheet, or one recording.

- a folder: every audio file under it (hidden ones skipped), each with the same-named `.txt` beside it;
  an audio file without one is untranscribed (recognition transcribes and cuts it, see prepare.py);
- a CSV/TSV/JSONL sheet (read by `higgs_cli.sheets`, as `say --input-file` reads it): an audio column
  and a text column, audio paths relative to the sheet; a row with no text is untranscribed;
- one audio file: a long recording without a transcript.

Problems with one file (an unreadable or empty transcript, a transcript with no audio, a missing audio
file) are dropped-clip lines; problems with DATA itself (nothing there, a sheet without the columns)
are UsageErrors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from higgs_cli import sheets
from higgs_cli.errors import UsageError
from higgs_cli.fsutil import read_capped_text
from higgs_cli.training.data.report import Dropped
from higgs_cli.voices.meta import clean_transcript
from higgs_cli.voices.reference_turn import reference_text

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".aac", ".aif", ".aiff")
SHEET_SUFFIXES = (".csv", ".tsv", ".jsonl")
AUDIO_COLUMNS = ("audio", "audio_path", "path", "file", "wav")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence")
MAX_FILES = 50_000  # audio files in one DATA folder: hundreds of hours of clips
MAX_TRANSCRIPT_BYTES = 64 << 10  # a clip of at most 30 s is a few hundred bytes of text


@dataclass(frozen=True)
class Item:
    """One recording: its audio file, its transcript as the model will read it (None: untranscribed),
    and its name in the report."""

    audio: Path
    text: str | None
    where: str


@dataclass
class Inputs:
    """The recordings DATA names, and the files dropped while finding them."""

    kind: str  # "folder", "sheet" or "recording"
    items: list[Item] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


def training_text(transcript: str) -> str:
    """A transcript as training reads it: the voice library's rule (whitespace collapsed, then
    `reference_text`), so a trained voice reads text as the voices' reference transcripts do.
    UsageError when nothing is left."""
    return reference_text(clean_transcript(transcript))


def collect(source: str | os.PathLike) -> Inputs:
    """The recordings in `source` (a folder, a sheet or an audio file); UsageError when it names none."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder",
                         hint="give a folder of audio files with same-named .txt transcripts, a CSV/TSV/JSONL "
                              "sheet (audio, text), or a recording")
    if path.is_dir():
        return _folder(path)
    suffix = path.suffix.lower()
    if suffix in SHEET_SUFFIXES:
        return _sheet(path)
    if suffix in AUDIO_SUFFIXES:
        return Inputs("recording", [Item(path, None, path.name)])
    raise UsageError(f"{path}: not a folder, a sheet ({', '.join(SHEET_SUFFIXES)}) or an audio file "
                     f"({', '.join(AUDIO_SUFFIXES)})", hint="give a folder of audio files with same-named .txt "
                                                            "transcripts, or a sheet with audio and text columns")


def _visible_files(root: Path) -> list[Path]:
    """Every regular file under `root`, no hidden file or folder, sorted; at most MAX_FILES audio files."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):  # links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / name for name in sorted(files) if not name.startswith(".")]
        if sum(p.suffix.lower() in AUDIO_SUFFIXES for p in found) > MAX_FILES:
            raise UsageError(f"{root} holds more than {MAX_FILES} audio files", hint="prepare it in parts")
    return found


def _folder(root: Path) -> Inputs:
    inputs = Inputs("folder")
    files = _visible_files(root)
    audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES]
    if not audio:
        raise UsageError(f"{root} holds no audio files ({', '.join(AUDIO_SUFFIXES)})",
                         hint="give a folder of audio files, each with a same-named .txt transcript")
    stems = {p.with_suffix("") for p in audio}
    for path in files:
        if path.suffix.lower() == ".txt" and path.with_suffix("") not in stems:
            inputs.dropped.append(Dropped(_rel(path, root), "a transcript with no audio file of the same name"))
    for path in audio:
        where = _rel(path, root)
        transcript = path.with_suffix(".txt")
        if not transcript.exists():
            inputs.items.append(Item(path, None, where))
            continue
        try:
            raw = read_capped_text(transcript, MAX_TRANSCRIPT_BYTES, what="transcript")
            if not raw.strip():
                raise UsageError(f"its transcript {transcript.name} is empty")
            inputs.items.append(Item(path, training_text(raw), where))
        except UsageError as error:
            inputs.dropped.append(Dropped(where, error.message))
    return inputs


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _sheet(path: Path) -> Inputs:
    sheet = sheets.read_sheet(path)
    audio_column = sheets.pick_column(sheet, AUDIO_COLUMNS)
    text_column = sheets.pick_column(sheet, TEXT_COLUMNS)
    sheet.raise_problems("the sheet")
    if audio_column is None or text_column is None:
        missing = " and ".join(f"{what} column ({', '.join(names)})" for what, names, column in (
            ("an audio", AUDIO_COLUMNS, audio_column), ("a text", TEXT_COLUMNS, text_column)) if column is None)
        raise UsageError(f"{path}: the sheet needs {missing}; its columns are {', '.join(sheet.columns) or 'none'}",
                         hint="name the columns audio and text in the header (JSONL: the keys of each line)")
    inputs = Inputs("sheet")
    for record in sheet.records:
        where = f"{path.name}:{record.line}"
        try:
            audio, text = sheets.as_text(record.values.get(audio_column)), \
                sheets.as_text(record.values.get(text_column))
        except TypeError as error:
            inputs.dropped.append(Dropped(where, f"a cell is {error} where text was expected"))
            continue
        if audio is None:
            inputs.dropped.append(Dropped(where, f"no audio path in the {audio_column} column"))
            continue
        file = (path.parent / Path(audio).expanduser()).resolve()
        if not file.is_file():
            inputs.dropped.append(Dropped(where, f"{audio}: no such audio file (paths are relative to the sheet)"))
            continue
        try:
            inputs.items.append(Item(file, None if text is None else training_text(text), f"{where} {audio}"))
        except UsageError as error:
            inputs.dropped.append(Dropped(where, error.message))
    if not inputs.items and not inputs.dropped:
        raise UsageError(f"{path} has no rows", hint="add one row per clip: its audio path and its transcript")
    return inputs
