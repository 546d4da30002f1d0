"""The rows of a `higgs say --input-file`: a .txt of lines (or paragraphs), a .csv/.tsv, or .jsonl.

Each row is checked on its own (text, id, seed, format) and every problem is
reported as `file:line: message`; nothing is rendered until the whole file is
valid. Output names are decided here too, so a bad or duplicate id is a
problem of the file, found before any model loads.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from higgs_cli.engine.request import SAMPLING_RANGES
from higgs_cli.engine.text import MAX_TEXT_CHARS, check_text, nothing_to_speak
from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.sheets import Record, Sheet, as_text, pick_column, read_bytes, read_csv, read_jsonl

COLUMNS = ("id", "text", "voice", "scene", "direction", "seed", "format")
SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")
MAX_ID_CHARS = 100
SAFE_ID = re.compile(r"\w[\w.-]*")  # \w is Unicode-aware: ids in any script are fine
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)),
            "manifest"}  # names Windows refuses, and the batch's own manifest


@dataclass(frozen=True)
class BatchRow:
    """One line to speak, with what the row set for itself (None: the command's default)."""

    number: int  # counted from 1, in file order
    line: int  # where it starts in the file
    text: str
    id: str | None = None
    voice: str | None = None
    scene: str | None = None
    seed: int | None = None
    format: str | None = None

    @property
    def stem(self) -> str:
        """The output file name without its extension: the id, or the row number."""
        return self.id if self.id is not None else f"{self.number:04d}"


def text_rows(where: str, text: str, *, paragraphs: bool = False) -> list[BatchRow]:
    """A .txt: one row per non-empty line, or with `paragraphs` per blank-line-separated block."""
    rows: list[BatchRow] = []
    block: list[str] = []
    start = 0
    lines = text.splitlines()
    for number, raw in enumerate([*lines, ""], start=1):
        if not paragraphs:
            if raw.strip():
                rows.append(BatchRow(len(rows) + 1, number, raw.strip()))
            continue
        if raw.strip():
            start = start or number
            block.append(raw.strip())
        elif block:
            rows.append(BatchRow(len(rows) + 1, start, " ".join(block)))
            block, start = [], 0
    return rows


def text_problem(text: str) -> str | None:
    """Why `text` cannot be spoken (empty, too long, nothing left once invisible characters go), or None."""
    try:
        check_text(text, max_chars=MAX_TEXT_CHARS)
    except HiggsError as error:
        return error.message
    return nothing_to_speak(text, "text")


def check_id(value: str) -> str | None:
    """Why `value` cannot name an output file, or None when it can."""
    if "/" in value or "\\" in value or value in (".", "..") or value.startswith("~") or ":" in value:
        return f"id {value!r} would name a file outside the output folder"
    if len(value) > MAX_ID_CHARS:
        return f"id is {len(value)} characters long; the limit is {MAX_ID_CHARS}"
    if not SAFE_ID.fullmatch(value):
        return (f"id {value!r} is not a safe file name (letters, digits, '_', '.', '-', "
                "starting with a letter or digit)")
    if value.split(".")[0].lower() in RESERVED:
        return f"id {value!r} is a reserved file name"
    return None


def sheet_rows(sheet: Sheet, formats: list[str]) -> list[BatchRow]:
    """The rows of a CSV or JSONL sheet, every cell checked; problems go on the sheet."""
    text_key = "text" if "text" in sheet.columns else None
    if text_key is None and sheet.records:
        close = [c for c in sheet.columns if c in ("line", "dialogue", "speech", "txt")]
        sheet.add(1, "there is no 'text' column" + (f" (is {close[0]!r} the text? rename it 'text')" if close
                                                     else f"; the columns are: {', '.join(sheet.columns)}"))
        return []
    scene_key = pick_column(sheet, ("scene", "direction"))
    rows = []
    for record in sheet.records:
        row = _row(sheet, record, len(rows) + 1, scene_key, formats)
        if row is not None:
            rows.append(row)
    return rows


def _row(sheet: Sheet, record: Record, number: int, scene_key: str | None, formats: list[str]) -> BatchRow | None:
    before = sheet.found
    cells: dict[str, str | None] = {}
    for key in ("id", "text", "voice", scene_key, "seed", "format"):
        if key is None:
            continue
        try:
            cells[key] = as_text(record.values.get(key))
        except TypeError as error:
            sheet.add(record.line, f"{key} must be text, not {error}")
            cells[key] = ""  # reported: not "empty" as well
    text = cells.get("text")
    if text is None:
        sheet.add(record.line, "text is empty")
    elif text and (why := text_problem(text)):
        sheet.add(record.line, why)
    if cells.get("id") is not None and (why := check_id(unicodedata.normalize("NFC", cells["id"]))):
        sheet.add(record.line, why)
    seed = _seed(sheet, record, cells.get("seed"))
    fmt = cells.get("format")
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        if fmt not in formats:
            sheet.add(record.line, f"format {fmt!r} cannot be written; use one of: {', '.join(formats)}")
    if sheet.found > before or not text:
        return None
    return BatchRow(number, record.line, text, id=unicodedata.normalize("NFC", cells["id"]) if cells.get("id")
                    else None, voice=cells.get("voice"), scene=cells.get(scene_key) if scene_key else None,
                    seed=seed, format=fmt)


def _seed(sheet: Sheet, record: Record, value: str | None) -> int | None:
    if value is None:
        return None
    rule = SAMPLING_RANGES["seed"]
    raw = record.values.get("seed")
    try:
        seed = int(value) if not isinstance(raw, float) or raw.is_integer() else None
    except ValueError:
        seed = None
    if seed is None or not rule.allows(seed):
        sheet.add(record.line, f"seed must be {rule.describe()}, got {value!r}")
        return None
    return seed


def check_names(sheet: Sheet, rows: list[BatchRow]) -> None:
    """Problems for two rows writing one file (compared without case: macOS and Windows ignore it)."""
    first: dict[str, BatchRow] = {}
    for row in rows:
        key = row.stem.casefold()
        if key in first:
            sheet.add(row.line, f"id {row.stem!r} is used twice (first on line {first[key].line}); "
                                "each row needs its own file")
        else:
            first[key] = row


@dataclass(frozen=True)
class BatchInput:
    """A checked input file: where it came from, its rows, and the columns it has that are not read."""

    where: str
    rows: list[BatchRow]
    ignored_columns: list[str]


def read_rows(path: Path | str, *, paragraphs: bool = False, formats: list[str],
              data: bytes | None = None) -> BatchInput:
    """The rows of an input file (or of `data` read from stdin as .txt); ValidationError with every
    problem's file:line when any row is bad."""
    if data is None and Path(path).is_dir():
        raise UsageError(f"--input-file {path} is a folder", hint="give a .txt, .csv, .tsv or .jsonl file")
    suffix = ".txt" if data is not None else Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"{path}: unknown input type '{suffix or 'no extension'}'",
                         hint="use .txt (a line each), .csv or .tsv (with a header), or .jsonl")
    where, text = read_bytes(path, data)
    if suffix == ".txt":
        sheet = Sheet(where, ["text"])
        rows = text_rows(where, text, paragraphs=paragraphs)
        for row in rows:
            if why := text_problem(row.text):
                sheet.add(row.line, why)
    else:
        sheet = read_jsonl(where, text) if suffix == ".jsonl" else read_csv(where, text, "," if suffix == ".csv"
                                                                           else "\t")
        rows = sheet_rows(sheet, formats)
    check_names(sheet, rows)
    sheet.raise_problems()
    if not rows:
        raise UsageError(f"{where} has no rows to speak", hint="give at least one line of text")
    # Columns for people (notes, status) are allowed; the caller warns that they are not read.
    return BatchInput(where, rows, [c for c in sheet.columns if c not in COLUMNS])
