"""`higgs plugins ...`: what is installed in the `higgs.plugins` entry-point group."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from higgs_cli.cli.output import out
from higgs_cli.plugins.manager import get_tasks, plugin_rows

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})


@app.command("list")
def list_() -> None:
    """List installed plugins and the tasks they add (built-ins included)."""
    rows = plugin_rows()
    owner = {task: row["name"] for row in rows for task in row["tasks"]}
    tasks = [{"name": task.name, "plugin": owner.get(task.name), "description": task.description,
              "fields": dict(task.fields)} for task in sorted(get_tasks().values(), key=lambda t: t.name)]

    def human(console: Console) -> None:
        table = Table("plugin", "distribution", "tasks", "hooks", box=None)
        for row in sorted(rows, key=lambda r: r["name"]):
            table.add_row(row["name"], row["distribution"] or "", ", ".join(row["tasks"]), ", ".join(row["hooks"]))
        console.print(table)
        console.print()
        details = Table("task", "description", "fields", box=None)
        for task in tasks:
            fields = "\n".join(f"{name}: {text}" for name, text in task["fields"].items())
            details.add_row(task["name"], task["description"], fields)
        console.print(details)

    out.result({"plugins": rows, "tasks": tasks}, human)
