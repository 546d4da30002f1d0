"""`higgs project import FILE`: a project folder from a dialogue sheet, a manuscript or an EPUB.

    result = import_project(Path("dialogue.csv"), Path("game"), tasks=get_tasks())

A module per source (`sheet`, `manuscript`, `epub`) makes a `Draft`;
`draft.to_yaml` writes it. The project is validated with the real loader in a
temporary folder before that folder becomes the destination, so an import
either leaves a project that `project validate` accepts, or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.project.commands.importers.draft import Draft, clean_title, to_yaml
from higgs_cli.project.layout import ProjectLayout

SHEETS = (".csv", ".tsv", ".jsonl")
MANUSCRIPTS = (".md", ".markdown", ".txt")
BOOKS = (".epub",)


@dataclass
class ImportResult:
    path: Path
    file: Path
    kind: str
    title: str
    sections: int
    lines: int
    speakers: list[str]
    unvoiced: list[str]  # speakers with only a placeholder description
    ignored_columns: list[str] = field(default_factory=list)
    format: str | None = None  # output.format chosen for the project (None: the default)
    format_reason: str | None = None  # why

    def to_dict(self) -> dict:
        return {"path": str(self.path), "file": str(self.file), "kind": self.kind, "title": self.title,
                "sections": self.sections, "lines": self.lines, "speakers": self.speakers,
                "speakers_without_voice": self.unvoiced, "ignored_columns": self.ignored_columns,
                "format": self.format, "format_reason": self.format_reason}


def read_source(source: Path, *, title: str | None = None, chapter_pattern: str | None = None) -> tuple[Draft, list]:
    """The draft of any supported source, and the sheet columns that were not read."""
    suffix = source.suffix.lower()
    if suffix in SHEETS:
        from higgs_cli.project.commands.importers.sheet import read_dialogue_sheet

        return read_dialogue_sheet(source, title=title)
    if suffix in MANUSCRIPTS:
        from higgs_cli.project.commands.importers.manuscript import read_manuscript

        return read_manuscript(source, title=title, chapter_pattern=chapter_pattern), []
    if suffix in BOOKS:
        from higgs_cli.project.commands.importers.epub import read_epub

        return read_epub(source, title=title), []
    raise UsageError(f"{source}: cannot import '{suffix or 'a file without an extension'}'",
                     hint="import a dialogue sheet (.csv, .tsv, .jsonl), a manuscript (.md, .txt) or a book (.epub)")


def _check_destination(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a folder", hint="choose another -o folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; refusing to write a project into it",
                         hint="choose a new folder with -o, or empty this one first")
    if not dest.parent.is_dir():
        raise UsageError(f"-o {dest}: folder {dest.parent} does not exist", hint="create it first")


def _use_library_voices(draft: Draft, library) -> None:
    """A character whose name (in lower case, as voice names are) is a library voice speaks with it."""
    from higgs_cli.voices.library import VoiceLibrary

    try:
        names = {voice.name for voice in (library or VoiceLibrary()).list()}
    except HiggsError:
        return  # an unreadable library: every speaker keeps its description
    for speaker in draft.speakers.values():
        if speaker.name.lower() in names:
            speaker.voice = speaker.name.lower()


def import_project(source: Path | str, dest: Path | str | None = None, *, tasks: Mapping | None = None,
                   title: str | None = None, chapter_pattern: str | None = None, library=None) -> ImportResult:
    """Write a project folder at `dest` (default: a folder named after `source`, here) from `source`."""
    from higgs_cli.fsutil import atomic_dir, atomic_write_text
    from higgs_cli.project.reading.load import load_project

    source = Path(source)
    if not source.is_file():
        raise UsageError(f"{source}: no such file" if not source.exists() else f"{source} is not a file")
    dest = Path(dest) if dest is not None else Path(source.stem)
    _check_destination(dest)
    draft, ignored = read_source(source, title=title, chapter_pattern=chapter_pattern)
    draft.title = clean_title(draft.title)
    _use_library_voices(draft, library)
    with atomic_dir(dest) as tmp:
        ProjectLayout(tmp).voices_dir.mkdir()
        for name, data in draft.files.items():  # names the importer chose (cover.jpg), never the source's
            (tmp / name).write_bytes(data)
        atomic_write_text(ProjectLayout(tmp).project_file, to_yaml(draft))
        try:
            load_project(tmp, tasks=tasks)
        except HiggsError as error:  # the source passed every check of ours: the loader's word is final
            raise UsageError(f"the project made from {source} does not validate: {error}",
                             hint="fix the source (the problems name lines of the generated project.yaml)") \
                from None
    return ImportResult(dest, ProjectLayout(dest).project_file, draft.kind, draft.title, len(draft.sections),
                        draft.line_count, list(draft.speakers),
                        [s.name for s in draft.speakers.values() if not s.voice], ignored,
                        format=draft.output.get("format"), format_reason=draft.output_reason)
