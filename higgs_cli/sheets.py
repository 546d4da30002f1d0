"""Rows of a sheet: a CSV/TSV with a header, or JSON Lines, each row with the line it starts on.

Both `higgs say --input-file` and `higgs project import` read sheets here, so a
ragged row, a wrong delimiter or a broken JSON line reads the same everywhere:
`file:line: message`. Every problem is collected before anything is raised.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from higgs_cli import untrusted
from higgs_cli.errors import UsageError, ValidationError

MAX_INPUT_BYTES = 50 * 1024 * 1024  # a sheet of lines to speak, not a database
MAX_ROWS = 100_000
MAX_PROBLEMS_SHOWN = 50
SHEET_SUFFIXES = {".csv": ",", ".tsv": "\t"}
OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "bars", ",": "commas"}


@dataclass(frozen=True)
class Record:
    """One row: its fields by (lower-cased) column name and the file line it starts on."""

    line: int
    values: dict


@dataclass
class Sheet:
    """A sheet's columns (CSV) or keys seen (JSONL), its rows, and the problems found."""

    where: str
    columns: list[str]
    records: list[Record] = field(default_factory=list)
    _found: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self._found.append((line, len(self._found), f"{self.where}:{line}: {message}"))

    @property
    def found(self) -> int:
        """How many problems were found so far."""
        return len(self._found)

    @property
    def problems(self) -> list[str]:
        """Every problem, in file order."""
        return [text for *_, text in sorted(self._found)]

    def raise_problems(self, what: str = "the input") -> None:
        """ValidationError listing every problem (the first MAX_PROBLEMS_SHOWN), if there is any."""
        if not self._found:
            return
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        if len(self.problems) > len(shown):
            shown.append(f"... and {len(self.problems) - len(shown)} more")
        raise ValidationError(f"{self.where}: {len(self.problems)} problem(s) in {what}; nothing was written",
                              shown, hint="fix them and run the command again")


def read_bytes(path: Path | str, data: bytes | None = None) -> tuple[str, str]:
    """(display name, UTF-8 text) of a file, or of `data` (stdin); a clear error for unreadable input."""
    where = "<stdin>" if data is not None else str(path)
    if data is None:
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"{path}: no such file" if not path.exists() else f"{path} is not a file",
                             hint="give the path of an existing file")
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise UsageError(f"{path} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MB",
                             hint="split it into several files")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise UsageError(f"{where}:{line}: not UTF-8 (byte {error.start} cannot be read)",
                         hint=f"save it as UTF-8, e.g. `iconv -f LATIN1 -t UTF-8 {where}`") from None
    if not text.strip():
        raise UsageError(f"{where} holds no text", hint="give a file with lines to speak")
    return where, text


def read_csv(where: str, text: str, delimiter: str = ",") -> Sheet:
    """A delimited sheet with a header row; column names lower-cased and stripped."""
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    sheet = Sheet(where, [])
    start = 1
    try:
        header = next(rows)
        start = rows.line_num + 1
        sheet.columns = [name.strip().lower() for name in header]
        if len(sheet.columns) == 1:
            for other, name in OTHER_DELIMITERS.items():
                if other != delimiter and other in header[0]:
                    raise UsageError(f"{where}:1: the header is one column, {header[0]!r}: the file seems to "
                                     f"be separated by {name}, not {OTHER_DELIMITERS[delimiter]}",
                                     hint="save it with commas as .csv, or with tabs as .tsv")
        _check_header(sheet)
        for row in rows:
            line, start = start, rows.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # blank lines between rows
            if len(row) != len(sheet.columns):
                sheet.add(line, f"this row has {len(row)} field(s), the header has {len(sheet.columns)} "
                                "(quote a field that holds the delimiter, e.g. \"Well, yes.\")")
                continue
            sheet.records.append(Record(line, dict(zip(sheet.columns, (c.strip() for c in row), strict=True))))
            if len(sheet.records) > MAX_ROWS:
                raise UsageError(f"{where}: more than {MAX_ROWS} rows", hint="split it into several files")
    except csv.Error as error:
        raise UsageError(f"{where}:{start}: not a readable CSV row ({error})",
                         hint="check the quotes around this row") from None
    return sheet


def _check_header(sheet: Sheet) -> None:
    seen: set[str] = set()
    for number, name in enumerate(sheet.columns, start=1):
        if not name:
            sheet.add(1, f"column {number} has no name in the header")
        elif name in seen:
            sheet.add(1, f"column '{name}' appears twice in the header")
        seen.add(name)
    sheet.raise_problems("the header")


def read_jsonl(where: str, text: str) -> Sheet:
    """One JSON object per non-blank line; keys lower-cased; columns are every key seen."""
    sheet = Sheet(where, [])
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = untrusted.loads(raw)  # no NaN, number or nesting bombs, lone surrogates (issue 31)
        except untrusted.BadJSON as error:
            sheet.add(number, f"not usable JSON: {error.msg}")
            continue
        except json.JSONDecodeError as error:
            sheet.add(number, f"not valid JSON at column {error.colno} ({error.msg})")
            continue
        if not isinstance(value, dict):
            sheet.add(number, f"each line must be a JSON object ({{\"text\": ...}}), not {type(value).__name__}")
            continue
        values = {str(key).strip().lower(): item for key, item in value.items()}
        for key in values:
            if key not in sheet.columns:
                sheet.columns.append(key)
        sheet.records.append(Record(number, values))
        if len(sheet.records) > MAX_ROWS:
            raise UsageError(f"{where}: more than {MAX_ROWS} rows", hint="split it into several files")
    return sheet


def read_sheet(path: Path | str, data: bytes | None = None) -> Sheet:
    """A .csv, .tsv or .jsonl file as a Sheet (problems collected, not yet raised)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (*SHEET_SUFFIXES, ".jsonl"):
        raise UsageError(f"{path}: unknown sheet type '{suffix or 'no extension'}'",
                         hint="use .csv, .tsv or .jsonl")
    where, text = read_bytes(path, data)
    return read_jsonl(where, text) if suffix == ".jsonl" else read_csv(where, text, SHEET_SUFFIXES[suffix])


def pick_column(sheet: Sheet, names: tuple[str, ...]) -> str | None:
    """The one column among `names` (aliases) the sheet has; a header problem if it has several."""
    present = [name for name in names if name in sheet.columns]
    if len(present) > 1:
        sheet.add(1, f"columns {' and '.join(repr(p) for p in present)} mean the same thing; keep one")
    return present[0] if present else None


def as_text(value) -> str | None:
    """A cell as text: None for empty; numbers (JSON ids) as written; anything else is not text."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise TypeError(type(value).__name__)
