"""The contract between the render pipeline and task plugins.

A Task turns one script section into PlannedLines: engine requests plus what
assembly needs (speaker, subtitle text, pause). Plugins never touch the model;
the pipeline batches every planned line of the project through one session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from higgs_cli.engine.request import GenerationRequest, Sampling, Turn

if TYPE_CHECKING:
    from higgs_cli.project.model import Line, Project, Section


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


class PlanContext(Protocol):
    """What the pipeline offers a task while planning."""

    project: Project

    def voice_turns(self, speaker: str) -> tuple[Turn, ...]:
        """The reference Turn(s) for a speaker (empty for a description-only speaker)."""

    def speaker_description(self, speaker: str) -> str | None: ...

    def sampling_for(self, line: Line, section: Section) -> Sampling: ...

    def seed_for(self, line: Line, section: Section, index: int) -> int: ...

    def pause_for(self, line: Line, section: Section) -> float: ...

    def scene_for(self, line: Line, section: Section) -> str | None: ...

    @property
    def max_frames(self) -> int: ...


@runtime_checkable
class Task(Protocol):
    name: str
    description: str
    fields: dict[str, str]  # extra section keys this task accepts -> what each means

    def validate(self, section: Section, project: Project) -> list[str]:
        """Problems with this section, each "file:line:col: message" (empty when fine)."""

    def plan(self, section: Section, ctx: PlanContext) -> list[PlannedLine]:
        """Turn the section into generation jobs, in playback order."""
