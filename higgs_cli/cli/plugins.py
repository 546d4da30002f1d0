"""`higgs plugins ...`: what is installed in the `higgs.plugins` entry-point group."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from higgs_cli.cli.factory import make_app
from higgs_cli.cli.options import JsonFlag, QuietFlag
from higgs_cli.cli.output import out
from higgs_cli.plugins.manager import get_plugin_manager, get_tasks, plugin_rows

app = make_app("plugins", help="List installed task plugins.")


@app.command("list")
def list_(json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """List installed plugins and the tasks they add (built-ins included), and any skipped."""
    rows = plugin_rows()
    owner = {task: row["name"] for row in rows for task in row["tasks"]}
    tasks = [{"name": task.name, "plugin": owner.get(task.name), "description": task.description,
              "fields": dict(task.fields)} for task in sorted(get_tasks().values(), key=lambda t: t.name)]
    manager = get_plugin_manager()
    broken = [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in manager.failures]

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
        for failure in broken:
            console.print(f"skipped (broken): {failure['name']}: {failure['error']}")
        if manager.disabled:
            console.print("skipped ($HIGGS_DISABLE_PLUGINS): " + ", ".join(manager.disabled))

    out.result({"plugins": rows, "tasks": tasks, "broken": broken, "disabled": list(manager.disabled)}, human)
