"""`higgs project import FILE [-o DIR]`: a project from a dialogue sheet, a manuscript or an EPUB.

Registered on the `project` app when this module is imported (cli/app.py does).
Parses, calls `higgs_cli.project.commands.importers.import_project`, prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from higgs_cli.cli.options import JsonFlag, QuietFlag
from higgs_cli.cli.output import out
from higgs_cli.cli.project import app


@app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(metavar="FILE", show_default=False, help=(
        "A dialogue sheet (.csv, .tsv, .jsonl: speaker/character, text/line, and optional scene/chapter, id, "
        "direction), a manuscript (.md, .txt) or a book (.epub)."))],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", show_default=False,
        help="The project folder to create (it must not exist, or be empty) [default: FILE's name, here].")] = None,
    title: Annotated[Optional[str], typer.Option("--title", show_default=False, help=(
        "The project's title [default: the book's title, the manuscript's title heading, or FILE's name]."))] = None,
    chapter_pattern: Annotated[Optional[str], typer.Option("--chapter-pattern", show_default=False, help=(
        "A plain-text manuscript: a regular expression for chapter lines "
        "[default: lines starting Chapter, Part, Book, Prologue or Epilogue]."))] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Make a project folder from a dialogue sheet, a manuscript or an EPUB; it validates and renders as is."""
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project import import_project

    result = import_project(source, output, tasks=get_tasks(), title=title, chapter_pattern=chapter_pattern)
    if result.ignored_columns:
        out.warn(f"{source}: columns not read: {', '.join(result.ignored_columns)}")

    def human(console: Console) -> None:
        console.print(f"created {result.file}: {result.sections} sections, {result.lines} lines, "
                      f"{len(result.speakers)} speakers")
        if result.format_reason:
            console.print(f"output format {result.format_reason}")
        if result.unvoiced:
            console.print(f"speakers without a voice (a placeholder description for now): {', '.join(result.unvoiced)}")
            console.print(f"  give each a voice: `higgs voice add NAME recording.wav --transcript \"...\"`, then "
                          f"`voice: NAME` under the speaker in {result.file}; or describe it in `description:`")
        console.print(f"next: `higgs project validate {result.path}` and `higgs project render {result.path}`")

    out.result(result.to_dict(), human)
