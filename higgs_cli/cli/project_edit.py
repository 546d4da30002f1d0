"""The producer's editing loop on the `project` app: takes, pick, unpick, approve, unapprove, snapshots, restore.

Registered when cli/project.py imports this module. Each command parses, calls one library
function (project/commands/takes.py, approvals.py, snapshots.py) and prints. Only `takes --count` loads a
model; the rest read the project, the lock file and the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from higgs_cli.cli.options import (
    CompileOption,
    DeviceOption,
    JsonFlag,
    ModelOption,
    NoServerFlag,
    QuietFlag,
    RayOption,
    RevisionOption,
    ServerOption,
    WorkersOption,
)
from higgs_cli.cli.output import out
from higgs_cli.cli.project import ProjectPath, app
from higgs_cli.plugins.manager import get_tasks
from higgs_cli.project import load_project
from higgs_cli.sessions import SessionSpec

Ref = Annotated[str, typer.Argument(metavar="REF", show_default=False,
                                    help="A line: SECTION:N (as `project status` numbers it), its id:, or ID:N.")]
Refs = Annotated[Optional[list[str]], typer.Argument(metavar="REF...", show_default=False,
                                                  help="Lines: SECTION:N, a line's id:, or ID:N.")]
SectionsOption = Annotated[Optional[list[str]], typer.Option("--section", show_default=False,
                                                          help="Every line of this section (repeatable).")]
AllFlag = Annotated[bool, typer.Option("--all", help="Every line of the project.")]


def _lines(lines: list[str]) -> str:
    return ", ".join(lines[:10]) + (f" ... ({len(lines)} in all)" if len(lines) > 10 else "") if lines else "none"


@app.command()
def takes(
    path: ProjectPath,
    ref: Ref,
    count: Annotated[Optional[int], typer.Option("--count", "-n", show_default=False,
                                              help="Render this many new takes, in one batch (else: list them).")]
    = None,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    compile_: CompileOption = False,
    server: ServerOption = None,
    no_server: NoServerFlag = False,
    ray: RayOption = None,
    workers: WorkersOption = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """List a line's takes (each a WAV file to listen to), or render N new ones with other seeds (--count N)."""
    from higgs_cli.project import list_takes, make_takes

    tasks = get_tasks()
    spec = SessionSpec(model=model, revision=revision, device=device, compile=compile_, server=server,
                       no_server=no_server, ray=ray, workers=workers)  # bad options refused before anything loads
    project = load_project(path, tasks=tasks)
    if count is None:
        data = list_takes(project, ref, tasks=tasks)
    else:
        from higgs_cli.cli.progress import SESSION_NOTES
        from higgs_cli.project import check_library_voices
        from higgs_cli.sessions import describe_session, open_session

        check_library_voices(project)
        # lazy: takes already in the cache are listed again without loading the model
        session = open_session(spec, project_model=project.model, lazy=True, notes=SESSION_NOTES)
        data = {**make_takes(project, session, ref, count=count, tasks=tasks), "session": describe_session(session)}
        if data.get("is_random"):
            out.random_weights()

    def human(console: Console) -> None:
        console.print(f"takes of {data['ref']}: {data['text'][:70]}", highlight=False)
        if data["takes"]:
            table = Table("take", "seed", "seconds", "flags", "", box=None)
            for take in data["takes"]:
                table.add_row(str(take["take"]), str(take["seed"]), f"{take['seconds']:.1f}", _flags(take),
                              _take_note(take))
            console.print(table)
            for take in data["takes"]:  # on lines of their own: a path is never cut at the terminal's width
                console.print(f"take {take['take']}: {take['file'] or '(its file is gone)'}", highlight=False,
                              soft_wrap=True)
        else:
            console.print(f"no takes yet; make some with `higgs project takes PATH {data['ref']} --count 3`",
                          highlight=False)
        console.print(f"the next render uses {data['uses']['says']}", highlight=False)
        if data["takes"]:
            console.print(f"pick one with `higgs project pick PATH {data['ref']} TAKE` (0: its own seed)",
                          highlight=False)

    out.result(data, human)


def _flags(take: dict) -> str:
    return ",".join(str(f.get("code", "?")) for f in take.get("flags") or [] if isinstance(f, dict))


def _take_note(take: dict) -> str:
    """picked, and whether the take was made under other settings than the line's now."""
    notes = ["picked"] if take["picked"] else []
    if take["changes"]:
        notes.append("other " + ", ".join(take["changes"]))
    if not take["cached"]:
        notes.append("not cached")
    return "; ".join(notes)


@app.command()
def pick(
    path: ProjectPath,
    ref: Ref,
    take: Annotated[int, typer.Argument(metavar="TAKE", show_default=False,
                                        help="The take's number (`project takes` lists them; 0: the line's own seed).")
    ],
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Make one take the line's audio: recorded in project.lock.yaml, kept by every render until its text changes."""
    from higgs_cli.project import pick as pick_take

    tasks = get_tasks()
    data = pick_take(load_project(path, tasks=tasks), ref, take, tasks=tasks)
    _picked(data)


@app.command()
def unpick(path: ProjectPath, ref: Ref, json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """Drop a line's pick: the next render gives it its own seed and the current settings."""
    from higgs_cli.project import unpick as unpick_take

    tasks = get_tasks()
    _picked(unpick_take(load_project(path, tasks=tasks), ref, tasks=tasks))


def _picked(data: dict) -> None:
    note = " (its approval was dropped)" if data["unapproved"] else ""
    what = f"take {data['picked']} picked" if data["picked"] else "no take picked"
    out.result(data, lambda console: console.print(
        f"{data['ref']}: {what}{note}; the next render uses {data['uses']['says']}", highlight=False))


@app.command()
def approve(path: ProjectPath, refs: Refs = None, section: SectionsOption = None, all_: AllFlag = False,
            json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """Approve lines: they keep their audio through project-wide changes until their own text or voice changes."""
    from higgs_cli.project import approve as approve_lines

    tasks = get_tasks()
    data = approve_lines(load_project(path, tasks=tasks), refs or [], sections=section or [], every=all_, tasks=tasks)
    if data["flagged"]:  # approving keeps the audio; a flagged take deserves a listen first
        shown = ", ".join(f"{ref} ({', '.join(kinds)})" for ref, kinds in list(data["flagged"].items())[:8])
        out.warn(f"approved {len(data['flagged'])} line(s) the quality guards flagged: {shown}; listen to them "
                 f"(build/review.html), or render them again with `higgs project render PATH --line REF`")
    out.result(data, lambda console: console.print(f"approved {_lines(data['approved'])}", highlight=False))


@app.command()
def unapprove(path: ProjectPath, refs: Refs = None, section: SectionsOption = None, all_: AllFlag = False,
              json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """Drop lines' approvals: the next render gives them the project's current settings."""
    from higgs_cli.project import unapprove as unapprove_lines

    tasks = get_tasks()
    data = unapprove_lines(load_project(path, tasks=tasks), refs or [], sections=section or [], every=all_,
                           tasks=tasks)
    out.result(data, lambda console: console.print(f"unapproved {_lines(data['unapproved'])}", highlight=False))


@app.command()
def snapshots(path: ProjectPath = Path("."), json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """List the snapshots every render recorded (restore one with `project restore`)."""
    from higgs_cli.project import list_snapshots

    found = list_snapshots(load_project(path, tasks=get_tasks()))
    data = {"snapshots": [{k: v for k, v in s.items() if k not in ("keys", "files", "project")}
                          | {"files": len(s["files"]), "project_files": sorted(s.get("project") or {})}
                          for s in found]}

    def human(console: Console) -> None:
        if not found:
            console.print("no snapshots yet: every `higgs project render` records one", highlight=False)
            return
        table = Table(box=None)
        # the id in full at any width (it is what `restore` takes); the other columns wrap instead
        table.add_column("snapshot", no_wrap=True, min_width=max(len(s["id"]) for s in found))
        for name in ("time", "model", "lines", "generated", "duration"):
            table.add_column(name)
        for s in data["snapshots"]:
            table.add_row(s["id"], str(s.get("time")), str(s.get("model")), str(s.get("lines")),
                          str(s.get("generated")), f"{float(s.get('duration') or 0):.1f} s")
        console.print(table)

    out.result(data, human)


@app.command()
def restore(
    path: ProjectPath,
    snapshot: Annotated[str, typer.Argument(metavar="SNAPSHOT", show_default=False,
                                            help="A snapshot's id (or a unique start of it), or 'latest'.")],
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Write the outputs here "
                                                    "(default: the folder that render wrote).")] = None,
    with_project: Annotated[bool, typer.Option("--with-project", help="Also bring back the snapshot's "
                                               "project.yaml and project.lock.yaml (the current ones are kept "
                                               "as a snapshot first).")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Write a snapshot's outputs again, byte for byte; loads no model."""
    from higgs_cli.project import restore_snapshot

    data = restore_snapshot(load_project(path, tasks=get_tasks()), snapshot, out_dir=output_dir,
                            with_project=with_project)

    def human(console: Console) -> None:
        console.print(f"restored snapshot {data['snapshot']}: {len(data['files'])} files in {data['build_dir']}",
                      highlight=False)
        if with_project:
            console.print(f"and {', '.join(Path(p).name for p in data['project_files'])}; the previous ones are "
                          f"snapshot {data['kept_as']}", highlight=False)

    out.result(data, human)
