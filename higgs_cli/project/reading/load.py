"""Read and validate `project.yaml` into the project model (`higgs_cli.plugins.script`).

The steps, one module each: read and compose the YAML without trusting it
(`yaml_safety`), read the nodes into the model against the format's rules
(`reader`, `speakers`, `values`, `schema`), let each section's task check it
(`Task.validate`), and estimate the length (`length`). Every problem is
collected with its position (`problems`) and all are raised at once in one
ValidationError. Loading reads files but writes nothing; library voice names
are checked by `plan.library_voice_warnings` and before a render, not here.
The format is documented in docs/project-format.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.plugins.script import Project
from higgs_cli.plugins.task import Task
from higgs_cli.project.layout import PROJECT_FILE, ProjectLayout
from higgs_cli.project.reading.length import script_length_problem
from higgs_cli.project.reading.problems import Problems
from higgs_cli.project.reading.reader import ProjectReader
from higgs_cli.project.reading.yaml_safety import MAX_ALIAS_NODES, compose, expanded_size, read_capped, scan

__all__ = ["PROJECT_FILE", "find_project_file", "load_project"]


def find_project_file(path: Path | str) -> Path:
    """The project file for `path`: a folder's `project.yaml`, or `path` itself if it is a file."""
    path = Path(path)
    if path.is_dir():
        candidate = ProjectLayout(path).project_file
        if candidate.is_file():
            return candidate
        raise UsageError(f"no {PROJECT_FILE} in {path}",
                         hint=f"pass a project folder or its {PROJECT_FILE}; create one with `higgs project new`")
    if path.is_file():
        return path
    if not path.exists():
        raise UsageError(f"{path} does not exist", hint="pass a project folder or its project.yaml")
    raise UsageError(f"{path} is not a file or folder")


def _installed_tasks() -> Mapping[str, Task]:
    """The tasks of the installed plugins, for callers that pass no registry."""
    from higgs_cli.plugins.manager import get_tasks

    return get_tasks()


def load_project(path: Path | str, *, tasks: Mapping[str, Task] | None = None) -> Project:
    """Read and validate a project: a folder holding `project.yaml`, or the YAML file itself.

    `tasks` is the task registry (name -> Task) that sections are checked
    against; None means the installed plugins' tasks. Raises UsageError when
    there is no such file, and ValidationError listing every problem
    (`file:line:column: message (expected ...)`) when the file is malformed
    or invalid, including each task's own checks.
    """
    file = find_project_file(path)
    tasks = _installed_tasks() if tasks is None else tasks
    problems = Problems(file)
    node = compose(read_capped(file), problems)
    unsafe = scan(node, problems)
    # Reading follows aliases: it may read what is written, and at most MAX_ALIAS_NODES more.
    reader = ProjectReader(problems, file.parent, unsafe, tasks, budget=expanded_size(node)[1] + MAX_ALIAS_NODES)
    project, sections = reader.project(node, file)
    # Each task checks its own sections, once they are well-formed on their own.
    for section, clean in sections:
        task = tasks.get(section.task)
        if clean and task is not None:
            for problem in task.validate(section, project) or []:
                problems.add_problem(problem)
    if not problems:  # a runaway script (a whole book pasted in) is refused before any render starts
        if problem := script_length_problem(project):
            problems.add_at(reader.script_at[0], reader.script_at[1], problem,
                            "a shorter project (split it into several), or a higher output.max_hours (at most 24)")
    problems.raise_if_any()
    return project
