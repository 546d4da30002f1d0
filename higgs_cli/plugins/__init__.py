"""The plugin system, and the whole API a plugin author needs, in one import.

`from higgs_cli.plugins import hookimpl, Task, PlannedLine, Problem, ...`: the
hook marker, the task contract (`task.py`), the project as a task sees it
(`script.py`) and the helpers the built-in tasks use (`helpers.py`). Nothing
here imports the project layer (`higgs_cli.project`) or torch; the plugin
manager (`manager.py`) is for higgs itself, not for plugins.
"""

from higgs_cli.plugins.helpers import (
    MAX_CONTEXT,
    check_int,
    check_speakers,
    check_text,
    field,
    has_voice,
    join_scene,
    plan_wrapped_lines,
    problem,
    request,
    solo_scene,
    speaker_numbers,
    speaker_of,
)
from higgs_cli.plugins.hookspecs import hookimpl
from higgs_cli.plugins.script import (
    GuardSettings,
    Line,
    Location,
    OutputSettings,
    Project,
    SamplingDefaults,
    Section,
    Speaker,
)
from higgs_cli.plugins.task import PlanContext, PlannedLine, Problem, Task

__all__ = [
    "MAX_CONTEXT", "GuardSettings", "Line", "Location", "OutputSettings", "PlanContext", "PlannedLine", "Problem",
    "Project", "SamplingDefaults", "Section", "Speaker", "Task", "check_int", "check_speakers", "check_text", "field",
    "has_voice", "hookimpl", "join_scene", "plan_wrapped_lines", "problem", "request", "solo_scene",
    "speaker_numbers", "speaker_of",
]
