"""The contract between the render pipeline and task plugins.

A Task checks its sections (returning Problems) and turns each into
PlannedLines: engine requests plus what assembly needs (speaker, subtitle
text, pause). Plugins never touch the model; the pipeline batches every
planned line of the project through one session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from higgs_cli.engine.request import GenerationRequest, Sampling, Turn
from higgs_cli.plugins.script import Line, Location, Project, Section


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a section: where it is, and what is wrong (and how to fix it).

    `subject` names what the problem is about when there is no location (a
    section built in code rather than read from a file), e.g. "section 'intro'".
    """

    location: Location | None
    message: str
    subject: str | None = None

    def __str__(self) -> str:
        where = str(self.location) if self.location is not None else self.subject
        return f"{where}: {self.message}" if where else self.message


@dataclass
class PlannedLine:
    """One generation job.

    `context_from` lists indexes (into the same section's planned lines) of
    earlier lines whose text and generated audio are appended to this
    request's history at render time: long narration stays in one voice by
    letting each chunk hear the chunks before it.
    """

    section: str
    speaker: str | None
    display_text: str
    request: GenerationRequest
    pause_after: float
    context_from: tuple[int, ...] = ()
    extra: dict = field(default_factory=dict)  # plugin data recorded in the manifest
    retries: int | None = None  # more tries when the guards flag it; None: the planner fills in ctx.retries_for


class PlanContext(Protocol):
    """What the pipeline offers a task while planning."""

    project: Project

    def voice_turns(self, speaker: str) -> tuple[Turn, ...]:
        """The reference Turn(s) for a speaker (empty for a description-only speaker)."""

    def speaker_description(self, speaker: str) -> str | None: ...

    def sampling_for(self, line: Line, section: Section) -> Sampling: ...

    def seed_for(self, line: Line, section: Section, index: int) -> int: ...

    def pause_for(self, line: Line, section: Section) -> float: ...

    def retries_for(self, line: Line | None, section: Section) -> int: ...

    def scene_for(self, line: Line, section: Section) -> str | None: ...

    @property
    def max_frames(self) -> int: ...


@runtime_checkable
class Task(Protocol):
    name: str
    description: str
    fields: dict[str, str]  # extra section keys this task accepts -> what each means

    def validate(self, section: Section, project: Project) -> list[Problem]:
        """Every problem with this section (empty when fine)."""

    def plan(self, section: Section, ctx: PlanContext) -> list[PlannedLine]:
        """Turn the section into generation jobs, in playback order."""
