"""What the page's buttons and keys do: each calls the library function its CLI command calls.

    approve / unapprove   project.approve, project.unapprove      (`higgs project approve|unapprove`)
    takes (list, make)    project.list_takes, project.make_takes  (`higgs project takes [--count N]`)
    pick                  project.pick                            (`higgs project pick`)
    render                project.render_project                  (`higgs project render [--line|--section]`)
    restore               project.restore_snapshot                (`higgs project restore [--with-project]`)
    edit                  yaml_edit.edit_line                     (what an editor does to project.yaml)

Every write carries the sha256 of project.yaml the page read; a page that read another file is
refused (StaleError, 409) before anything is written. The library functions take the project lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import LockedError, UsageError
from higgs_cli.project import (
    approve,
    check_library_voices,
    list_takes,
    make_takes,
    pick,
    render_project,
    restore_snapshot,
    unapprove,
)
from higgs_cli.studio.view import lock_holder
from higgs_cli.studio.yaml_edit import edit_line

if TYPE_CHECKING:
    from higgs_cli.studio.jobs import JobProgress, Jobs
    from higgs_cli.studio.state import Studio

MAX_TAKES_AT_ONCE = 9  # the keys 1-9 pick them


def _text(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"'{name}' is missing: name a line (e.g. talk:2)")
    return value.strip()


def _refs(body: dict, name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value) or len(value) > 1000:
        raise UsageError(f"'{name}' must be a list of line references or section ids")
    return [v.strip() for v in value]


def _int(body: dict, name: str, low: int, high: int) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"'{name}' must be a whole number from {low} to {high}, not {value!r}")
    return value


def _free(studio: Studio) -> None:
    """Refuse at once (409) when another process holds the project lock, naming it."""
    holder = lock_holder(studio)
    if holder is not None:
        raise LockedError(holder, hint="wait for that command to finish, then try again")


def set_approval(studio: Studio, body: dict) -> dict:
    studio.check_sha(body.get("sha"))
    ref = _text(body, "ref")
    project = studio.project()
    if body.get("approved") is False:
        return unapprove(project, [ref], tasks=studio.tasks)
    return approve(project, [ref], tasks=studio.tasks)


def takes_of(studio: Studio, ref: str) -> dict:
    """The line's takes as `project takes REF` lists them; each take's file as a path in the build (`href`)."""
    if not ref:
        raise UsageError("'ref' is missing: name a line (e.g. talk:2)")
    data = list_takes(studio.project(), ref, tasks=studio.tasks)
    build = studio.layout.default_build.resolve()
    for take in data["takes"]:
        file = Path(take["file"]).resolve() if isinstance(take.get("file"), str) else None
        take["href"] = file.relative_to(build).as_posix() if file is not None and file.is_relative_to(build) else None
    return data


def pick_take(studio: Studio, body: dict) -> dict:
    studio.check_sha(body.get("sha"))
    return pick(studio.project(), _text(body, "ref"), _int(body, "take", 0, 10_000), tasks=studio.tasks)


def edit(studio: Studio, body: dict) -> dict:
    field = body.get("field")
    if not isinstance(field, str):
        raise UsageError("'field' is missing: text, scene, seed or pause")
    return edit_line(studio, _text(body, "ref"), field, body.get("value"), seen_sha=body.get("sha"))


def restore(studio: Studio, body: dict) -> dict:
    studio.check_sha(body.get("sha"))
    _free(studio)
    snapshot = _text(body, "snapshot")
    data = restore_snapshot(studio.project(), snapshot, with_project=bool(body.get("with_project")))
    return {**data, "sha": studio.sha()}


def start_render(studio: Studio, jobs: Jobs, body: dict) -> dict:
    """Render the whole project, or the named lines and sections, as `project render` does."""
    studio.check_sha(body.get("sha"))
    lines, sections = _refs(body, "lines"), _refs(body, "sections")
    project = studio.project()
    check_library_voices(project)  # before any model loads, as the CLI does
    _free(studio)
    session = studio.session(project)
    what = ", ".join(lines + sections) or "the project"

    def work(progress: JobProgress) -> dict:
        kwargs = {} if studio.batch_size is None else {"batch_size": studio.batch_size}
        return render_project(project, session, progress=progress, tasks=studio.tasks, lines=lines,
                              sections=sections, device=studio.device, **kwargs).to_dict()

    return jobs.start("render", what, work)


def start_takes(studio: Studio, jobs: Jobs, body: dict) -> dict:
    """Make N takes of one line, as `project takes REF --count N` does."""
    studio.check_sha(body.get("sha"))
    ref = _text(body, "ref")
    count = _int(body, "count", 1, MAX_TAKES_AT_ONCE)
    project = studio.project()
    check_library_voices(project)
    _free(studio)
    session = studio.session(project)

    def work(progress: JobProgress) -> dict:
        progress.start([(ref, count, 0)])
        result: Any = make_takes(project, session, ref, count=count, tasks=studio.tasks)
        progress.done = count
        return result

    return jobs.start("takes", ref, work)
