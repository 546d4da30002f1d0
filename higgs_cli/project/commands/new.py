"""`higgs project new`: a project folder from a built-in template."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import atomic_write_text
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.reading.problems import did_you_mean, one_of
from higgs_cli.project.reading.schema import MAX_TITLE_CHARS

TEMPLATES = ("podcast", "audiobook")


def template_text(template: str) -> str:
    """The text of a built-in project template (`podcast` or `audiobook`)."""
    if template not in TEMPLATES:
        raise UsageError(f"unknown template '{template}'{did_you_mean(template, TEMPLATES)}",
                         hint=f"choose {one_of(TEMPLATES)}")
    return (resources.files("higgs_cli.project.commands") / "templates" / f"{template}.yaml").read_text("utf-8")


def new_project(dest: Path | str, *, title: str, template: str = "podcast") -> Path:
    """Create a project folder at `dest` from a template; returns the folder.

    The folder may exist if it is empty; a non-empty folder or a file is never
    overwritten (UsageError). The project gets `project.yaml` (the template
    with `title` filled in) and an empty `voices/` folder for recordings.
    """
    dest = Path(dest)
    text = template_text(template)
    title = title.strip()
    if not title or len(title) > MAX_TITLE_CHARS or not title.isprintable():
        raise UsageError(f"the title must be one line of 1 to {MAX_TITLE_CHARS} printable characters")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest} exists and is not a folder", hint="choose another path")
    if dest.is_dir() and any(dest.iterdir()):
        raise UsageError(f"{dest} is not empty; refusing to overwrite it",
                         hint="choose a new folder name, or empty the folder first")
    # JSON strings are valid YAML double-quoted scalars: any title survives quoting.
    text = re.sub(r"(?m)^title:.*$", lambda _: f"title: {json.dumps(title, ensure_ascii=False)}", text, count=1)
    dest.mkdir(parents=True, exist_ok=True)
    layout = ProjectLayout(dest)
    layout.voices_dir.mkdir(exist_ok=True)
    atomic_write_text(layout.project_file, text)
    return dest
