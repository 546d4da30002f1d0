"""`higgs project ...`: create, validate, render, inspect and clean projects.

Commands parse, call `higgs_cli.project`, print. The model is loaded only by
`render`; `status` judges lines from the cache and the last build alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from higgs_cli.cli.factory import make_app
from higgs_cli.cli.options import (
    BatchSizeOption,
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
from higgs_cli.cli.progress import SESSION_NOTES, RenderBars
from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.plugins.manager import get_tasks
from higgs_cli.project import (
    LockFile,
    ProjectLayout,
    check_delivery,
    check_library_voices,
    clean_project,
    library_voice_warnings,
    load_project,
    new_project,
    prepare_project,
    prepare_render,
    project_status,
    render_project,
    unused_entry_warnings,
)
from higgs_cli.sessions import SessionSpec, describe_session, open_session

app = make_app("project", help="Create, validate and render projects.")

ProjectPath = Annotated[Path, typer.Argument(metavar="PATH", show_default=False,
                                             help="Project folder or its project.yaml (default: this folder).")]


@app.command()
def new(
    name: Annotated[Path, typer.Argument(metavar="NAME", show_default=False,
                                         help="Folder to create (it must not exist, or be empty).")],
    template: Annotated[str, typer.Option("--template", help="Start from 'podcast' (dialogue) "
                                                             "or 'audiobook' (narration).")] = "podcast",
    title: Annotated[str | None, typer.Option("--title", help="The title (default: the folder name).")] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Create a project folder with a commented project.yaml to edit."""
    folder = new_project(name, title=title or name.resolve().name, template=template)
    file = ProjectLayout(folder).project_file
    out.result({"path": str(folder), "file": str(file), "template": template},
               lambda console: console.print(
                   f"created {file}\nnext: edit it, then run "
                   f"`higgs project validate {folder}` and `higgs project render {folder}`", highlight=False))


@app.command()
def validate(path: ProjectPath = Path("."), json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """Check a project file: every problem is listed with file:line:column (exit code 2)."""
    project = load_project(path, tasks=get_tasks())
    LockFile.of(project)  # a lock file edited into nonsense: its problems, with positions
    check_delivery(project)  # a cover that is not an image, a format this installation cannot write
    warnings = library_voice_warnings(project) + unused_entry_warnings(project)  # a render refuses the first
    for warning in warnings:
        out.warn(warning)
    lines = sum(len(section.lines) for section in project.sections)
    data = {"valid": True, "file": str(project.file), "title": project.title, "speakers": list(project.speakers),
            "sections": [{"id": s.id, "task": s.task, "lines": len(s.lines)} for s in project.sections],
            "lines": lines, "warnings": warnings}
    out.result(data, lambda console: console.print(
        f"{project.file}: ok ({len(project.sections)} sections, {lines} lines, "
        f"{len(project.speakers)} speakers)", highlight=False))


@app.command()
def render(
    path: ProjectPath = Path("."),
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    force: Annotated[bool, typer.Option("--force", help="Generate every line again, ignoring the cache.")] = False,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", "-o", help="Write outputs here "
                                                    "(default: the project's build/ folder).")] = None,
    compile_: CompileOption = False,
    section: Annotated[Optional[list[str]], typer.Option(
        "--section", show_default=False, help="Generate only this section's lines (repeatable); the rest "
        "come from the cache, and lines never rendered are left out and reported.")] = None,
    line: Annotated[Optional[list[str]], typer.Option(
        "--line", show_default=False, help="Generate only this line (repeatable): SECTION:N, an id:, or ID:N.")] = None,
    refresh_context: Annotated[bool, typer.Option(
        "--refresh-context", help="Generate again the lines whose context (the lines they hear) changed since "
        "they were rendered, and the lines that hear those.")] = False,
    rerender_approved: Annotated[bool, typer.Option(
        "--rerender-approved", help="Let approved lines follow project-wide changes (defaults, scene, model).")]
    = False,
    ray: RayOption = None,
    workers: WorkersOption = None,
    server: ServerOption = None,
    no_server: NoServerFlag = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Render a project: generate the lines the cache lacks, then write the master, stems and subtitles."""
    tasks = get_tasks()
    spec = SessionSpec(model=model, revision=revision, device=device, compile=compile_, server=server,
                       no_server=no_server, ray=ray, workers=workers)  # bad options refused before anything loads
    place = prepare_render(path, output_dir)  # a URL: the project mirrored here, outputs staged to publish
    output_dir = place.out_dir
    project = load_project(place.path, tasks=tasks)
    check_library_voices(project)  # before the model loads: a misspelt voice should not cost that wait
    # The model loads only if a line must be generated: a re-assembly (title, pause, loudness) needs
    # only its fingerprints, read from its files. Unlocatable, it is left to the loader to explain.
    session = open_session(spec, project_model=project.model, lazy=True, notes=SESSION_NOTES)
    edit = {"sections": section or [], "lines": line or [], "refresh_context": refresh_context,
            "rerender_approved": rerender_approved, "device": device}  # device: where speech recognition runs
    if out.show_progress:
        with RenderBars(out.err) as bars:
            summary = render_project(project, session, out_dir=output_dir, progress=bars, force=force,
                                     batch_size=batch_size, tasks=tasks, **edit)
    else:
        summary = render_project(project, session, out_dir=output_dir, force=force, batch_size=batch_size,
                                 tasks=tasks, **edit)
    if summary.unfinished:
        out.warn(f"{len(summary.unfinished)} line(s) stopped at defaults.max_seconds before the model ended them: "
                 + ", ".join(summary.unfinished[:5]) + (" ..." if len(summary.unfinished) > 5 else ""))
    if summary.mastering_note and not out.json_mode:  # in --json it is the summary's mastering.note
        out.warn(summary.mastering_note)
    if not out.json_mode:  # in --json they are the summary's missing, context_lines, context_changed, flagged
        _edit_warnings(summary)
    published = place.publish()  # every object, the manifest last

    def human(console: Console) -> None:
        speed = f", {summary.realtime_factor:.1f}x real time" if summary.realtime_factor else ""
        console.print(Text.assemble("rendered ", (summary.title, "bold"), f": {summary.lines} lines "
                                    f"({summary.generated} generated{speed}, {summary.cached} from cache), "
                                    f"{summary.duration:.1f} s"))
        figures = summary.mastering or {}
        if figures.get("loudness_lufs") is not None and figures.get("true_peak_dbtp") is not None:
            console.print(f"  mastered {figures['loudness_lufs']:.1f} LUFS, true peak {figures['true_peak_dbtp']:.1f} "
                          f"dBTP (target {figures['target_lufs']:g} LUFS, ceiling {figures['ceiling_dbtp']:g} dBTP)",
                          highlight=False)
        for kind, value in summary.outputs.items():
            shown = f"{len(value)} files in {Path(value[0]).parent}" if isinstance(value, list) and value else value
            console.print(f"  {kind:<8} {shown}")
        if published:
            console.print(f"  published {len(published['objects'])} objects to {published['url']}", highlight=False)

    if summary.is_random:
        out.random_weights()
    out.result({**summary.to_dict(), **({"published": published} if published else {}),
                "session": describe_session(session)}, human)


def _edit_warnings(summary) -> None:
    """What a partial render left out, what it generated besides, and lines whose context changed."""
    if summary.missing:
        out.warn(f"{len(summary.missing)} line(s) were never rendered and are left out of the outputs: "
                 + ", ".join(summary.missing[:8]) + (" ..." if len(summary.missing) > 8 else ""))
    if summary.context_lines:
        out.warn("generated as context for the chosen lines: " + ", ".join(summary.context_lines[:8]))
    if summary.context_changed:
        out.warn(f"{len(summary.context_changed)} line(s) heard lines that changed since: "
                 + ", ".join(summary.context_changed[:8]) + "; `--refresh-context` renders them again")
    if summary.flagged:
        out.warn(f"{summary.flagged} line(s) flagged by the quality guards (see `higgs project status`)")


@app.command()
def status(path: ProjectPath = Path("."), json_output: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """Show which lines are rendered, stale (cached, not in the outputs) or missing; loads no model."""
    from higgs_cli.project import published_url

    tasks = get_tasks()
    place = prepare_project(path)  # a URL: mirrored as render mirrors it (its cache, its last render's state)
    report = project_status(load_project(place.path, tasks=tasks), tasks=tasks, default_build=place.out_dir)
    url = published_url(report.build_dir)  # the build judged is a staging folder: where it was published
    where = url or report.build_dir

    def human(console: Console) -> None:
        table = Table("section", "#", "speaker", "state", "marks", "text", box=None)
        colors = {"rendered": "green", "stale": "yellow", "missing": "red", "unknown": "magenta"}
        for line in report:
            text = line.text if len(line.text) <= 60 else line.text[:57] + "..."
            table.add_row(line.section, str(line.index + 1), line.speaker or "",  # counted from 1, as refs
                          Text(line.state, style=colors[line.state]), _marks(line), text)
        console.print(table)
        marks = ", ".join(f"{n} {mark.replace('_', ' ')}" for mark, n in report.marks().items() if n)
        if marks:
            console.print(marks, highlight=False)
        counts = ", ".join(f"{n} {state}" for state, n in report.counts().items() if n)
        if report.outputs_current:
            console.print(f"{counts}: the outputs in {where} are up to date", highlight=False)
        else:
            changed = "" if report.settings_current else " (the title, a pause or an output setting changed)"
            console.print(f"{counts}: run `higgs project render` to update {where}{changed}",
                          highlight=False)
        why = {r: n for r, n in report.reasons().items() if r != "context"}
        if why:  # what the render will generate again, by the reason each line names
            console.print("to generate: " + ", ".join(f"{n} {reason}" for reason, n in why.items()), highlight=False)
        if report.unresolved_voices:
            console.print("voices not yet encoded for this model: " + ", ".join(report.unresolved_voices)
                          + "; their lines are unknown until a render encodes them (it generates only what is "
                          "not cached)", highlight=False)

    out.result({**report.to_dict(), **({"build_url": str(url)} if url else {})}, human)


def _marks(line) -> str:
    """A status row's marks: why it is generated again, approved, changed since approval, context changed, take
    (kept, and made under other settings), flags, id."""
    take = ""
    if line.take:
        other = f", made under other {', '.join(line.pick_changes)}" if line.pick_changes else ""
        take = f"take {line.take}" + (f" kept{other}" if line.take_kept else "")
    why = [r for r in line.reasons if r != "context"]
    marks = [("why: " + ", ".join(why) if why else ""),
             ("approved" if line.approved else ""), ("changed since approval" if line.changed_since_approval else ""),
             ("context changed" if line.context_changed else ""), take,
             ("flagged: " + ",".join(f.get("code", "?") for f in line.flags) if line.flags else ""),
             (f"id {line.id}" if line.id else "")]
    return "; ".join(m for m in marks if m)


@app.command()
def clean(
    path: ProjectPath = Path("."),
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Delete the render cache "
                                        "(every line will be generated again).")] = True,
    build: Annotated[bool, typer.Option("--build/--no-build", help="Delete the build outputs.")] = True,
    snapshots: Annotated[bool, typer.Option("--snapshots", help="Delete the snapshots too (`project restore` "
                                            "can then restore nothing); kept by default.")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Delete a project's render cache and build outputs (snapshots stay unless --snapshots)."""
    place = prepare_project(path)  # a URL: the mirror render made; its build/ prefix is cleaned too
    project = load_project(place.path, tasks=get_tasks())
    removed = clean_project(project, cache=cache, build=build, snapshots=snapshots,
                            urls=[str(place.target.url)] if place.target is not None else [])
    out.result({"removed": removed}, lambda console: console.print(
        "\n".join(f"removed {p}" for p in removed) if removed else "nothing to remove", highlight=False))

