"""`higgs project check PATH --profile acx|podcast|broadcast`: a build measured as delivered.

Registered on the `project` app; the measuring is in `higgs_cli.project.commands.check`.
Exit code 0 when every rule passes, 1 when one fails, 2 for bad input
(an unknown profile, no build).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from higgs_cli.cli.options import JsonFlag, QuietFlag
from higgs_cli.cli.output import out
from higgs_cli.cli.project import ProjectPath, app
from higgs_cli.plugins.manager import get_tasks
from higgs_cli.project import load_project


@app.command()
def check(
    path: ProjectPath = Path("."),
    profile: Annotated[Optional[str], typer.Option(
        "--profile", show_default=False,
        help="acx (audiobooks), podcast (-16 LUFS) or broadcast (EBU R128); default: the project's output.profile.")]
    = None,
    output_dir: Annotated[Optional[Path], typer.Option(
        "--output-dir", "-o", help="The build to check (default: the project's build/ folder).")] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Measure the build's delivered files (as encoded) against a delivery profile: one row per rule."""
    from higgs_cli.project import check_build

    project = load_project(path, tasks=get_tasks())
    report = check_build(project, profile, out_dir=output_dir)

    def human(console: Console) -> None:
        table = Table(title=f"{report.title}: {report.profile} check", title_justify="left")
        for column in ("file", "rule", "figure", "limit", "result"):
            table.add_column(column)
        for row in report.rows:
            figure = "silent" if row.figure is None else (f"{row.figure:g}" if isinstance(row.figure, float)
                                                          else str(row.figure))
            table.add_row(row.file, row.rule, figure, row.limit,
                          Text("pass", "green") if row.passed else Text("FAIL", "bold red"))
        console.print(table)
        failed = sum(not r.passed for r in report.rows)
        console.print(f"{report.profile}: " + ("every rule passed" if not failed else f"{failed} rule(s) failed"))

    out.result(report.to_dict(), human)
    if not report.passed:
        raise typer.Exit(1)
