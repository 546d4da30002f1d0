"""How long a project will last, estimated from its text, and the refusal of a runaway one.

The loader checks the script against `output.max_hours` (a whole book pasted
in is refused before any render starts); a render checks its planned lines
the same way before it generates anything.
"""

from __future__ import annotations

import re
import unicodedata

from higgs_cli.engine.request import FRAME_RATE
from higgs_cli.errors import UsageError
from higgs_cli.plugins.script import Project
from higgs_cli.plugins.task import PlannedLine

SPEECH_CHARS_PER_SECOND = 15.0  # brisk narration; a wide (CJK) character counts as 3
LENGTH_HINT = "split the project into several, or raise output.max_hours (at most 24)"
MARKUP = re.compile(r"\[[^\]]*\]|<[^>]*>|\{[^}]*\}")
"""What a line's text holds that is not said: [laugh], [SPEAKER0], <SE>...</SE> tags, {tags}."""


def spoken_text(text: str) -> str:
    """`text` without its markup: what the duration estimate and speech recognition compare."""
    return " ".join(MARKUP.sub(" ", text).split())


def speech_seconds(text: str, max_seconds: float) -> float:
    """A rough length of `text` spoken aloud: at least half a second, at most `max_seconds`."""
    weight = sum(3 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in " ".join(text.split()))
    return min(max_seconds, max(0.5, weight / SPEECH_CHARS_PER_SECOND))


def length_problem(seconds: float, max_hours: float) -> str | None:
    """The message for a project estimated to last `seconds`, when that is over `max_hours`."""
    if seconds <= max_hours * 3600:
        return None
    return (f"the project would last about {seconds / 3600:.1f} hours (estimated from its text); "
            f"output.max_hours is {max_hours:g}")


def script_length_problem(project: Project) -> str | None:
    """`length_problem` for the project's script as written (before planning)."""
    seconds = sum(speech_seconds(line.text, project.defaults.max_seconds)
                  + (project.defaults.pause if line.pause is None else line.pause)
                  for section in project.sections for line in section.lines)
    return length_problem(seconds, project.output.max_hours)


def check_render_length(project: Project, planned: list[PlannedLine]) -> None:
    """Refuse, before generating anything, a render estimated to run past output.max_hours."""
    seconds = sum(speech_seconds(line.display_text, line.request.max_frames / FRAME_RATE) + max(0.0, line.pause_after)
                  for line in planned)
    problem = length_problem(seconds, project.output.max_hours)
    if problem:
        raise UsageError(f"{project.file}: {problem}", hint=LENGTH_HINT)
