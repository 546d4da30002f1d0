"""Helpers for writing tasks: problems with positions, speakers, field checks, scenes, requests.

The built-in tasks use exactly these; a third-party task may too (they are
re-exported by `higgs_cli.plugins`).
"""

from __future__ import annotations

from typing import Any

from higgs_cli.engine.request import GenerationRequest, Turn
from higgs_cli.engine.text import normalize_text
from higgs_cli.plugins.script import Line, Project, Section
from higgs_cli.plugins.task import PlanContext, PlannedLine, Problem

MAX_CONTEXT = 8
"""Earlier lines a line may hear: each one lengthens its prompt."""


def problem(section: Section, message: str, *, key: str | None = None, line: Line | None = None) -> Problem:
    """A Problem at the best position: the line, else the field `key`, else the section."""
    loc = (line.location if line is not None else None) or \
        (section.field_locations.get(key) if key else None) or section.location
    return Problem(loc, message, subject=None if loc is not None else f"section '{section.id}'")


def speaker_of(line: Line, section: Section, project: Project) -> str | None:
    """The line's speaker, else the section's `speaker:`, else the project's only speaker."""
    if line.speaker or section.speaker:
        return line.speaker or section.speaker
    if len(project.speakers) == 1:
        return next(iter(project.speakers))
    return None


def has_voice(project: Project, name: str) -> bool:
    """Whether the speaker has a recording to clone (a library voice or a project file)."""
    speaker = project.speakers[name]
    return bool(speaker.voice or speaker.audio)


def check_speakers(section: Section, project: Project, *, need_voice: bool = False) -> list[Problem]:
    """Every line resolves to a known speaker (with a voice reference when `need_voice`)."""
    problems: list[Problem] = []
    known = ", ".join(sorted(project.speakers)) or "none"
    if section.speaker and section.speaker not in project.speakers:
        problems.append(problem(section, f"unknown speaker '{section.speaker}' (known: {known})"))
    for line in section.lines:
        name = speaker_of(line, section, project)
        if name is None:
            problems.append(problem(section, "this line has no speaker; set `speaker:` on the line or on the section",
                                    line=line))
        elif name not in project.speakers:
            if line.speaker and line.speaker != section.speaker:  # a section's is reported once, above
                problems.append(problem(section, f"unknown speaker '{name}' (known: {known})", line=line))
        elif need_voice and not has_voice(project, name):
            problems.append(problem(section, f"task '{section.task}' clones a voice, but speaker '{name}' has only "
                                             f"a description; give it `voice:` or `audio:` + `transcript:`", line=line))
    return problems


def check_int(section: Section, key: str, *, minimum: int, maximum: int) -> list[Problem]:
    """The optional field `key` is a whole number from `minimum` to `maximum`."""
    if key not in section.fields:
        return []
    value = section.fields[key]
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        return [problem(section, f"`{key}` must be a whole number from {minimum} to {maximum}, not {value!r}",
                        key=key)]
    return []


def check_text(section: Section, key: str, *, required: bool) -> list[Problem]:
    """The field `key` is non-empty text (and present, when `required`)."""
    value = section.fields.get(key)
    if value is None:
        return [problem(section, f"task '{section.task}' needs `{key}:`")] if required else []
    if not isinstance(value, str) or not value.strip():
        return [problem(section, f"`{key}` must be non-empty text", key=key)]
    return []


def field(section: Section, key: str, default: Any) -> Any:
    """The field's value, or `default` when it is absent or null."""
    value = section.fields.get(key)
    return default if value is None else value


def join_scene(*parts: str | None) -> str | None:
    """Scene paragraphs joined by blank lines; None when there is nothing to say."""
    text = "\n\n".join(p.strip() for p in parts if p and p.strip())
    return text or None


def request(ctx: PlanContext, line: Line, section: Section, index: int, *, text: str,
            history: tuple[Turn, ...] = (), scene: str | None = None) -> GenerationRequest:
    """A request with the project's sampling, seed and length limit for this line."""
    return GenerationRequest(
        text=text,
        history=history,
        scene=scene,
        sampling=ctx.sampling_for(line, section),
        seed=ctx.seed_for(line, section, index),
        max_frames=ctx.max_frames,
    )


def solo_scene(ctx: PlanContext, line: Line, section: Section, speaker: str, *extra: str | None) -> str | None:
    """Scene for one-voice tasks: the line/section/project scene, anything task-specific,
    and `SPEAKER0: <description>` when the speaker has no recording to clone."""
    described = None
    if not ctx.voice_turns(speaker):
        description = ctx.speaker_description(speaker)
        described = f"SPEAKER0: {description}" if description else None
    return join_scene(ctx.scene_for(line, section), *extra, described)


def speaker_numbers(project: Project) -> dict[str, int]:
    """SPEAKER0, SPEAKER1, ... in order of first appearance in the project's script."""
    numbers: dict[str, int] = {}
    for section in project.sections:
        for line in section.lines:
            name = speaker_of(line, section, project)
            if name is not None and name not in numbers:
                numbers[name] = len(numbers)
    return numbers


def wrap_in_markers(text: str, opening: str, closing: str) -> str:
    """`text` between the markers `opening` and `closing`, normalized; a marker the text already
    holds is not added again (`[music start] Hi! [music end]` stays as written, issue 16.4)."""
    text = text.strip()
    body = normalize_text(text)  # markers compared as the model sees them: "[Music Start]" is "[music start]"
    parts = [opening if normalize_text(opening) not in body else "", text,
             closing if normalize_text(closing) not in body else ""]
    return normalize_text(" ".join(part for part in parts if part))


def plan_wrapped_lines(section: Section, ctx: PlanContext, *, opening: str, closing: str, scene_note: str,
                       extra: dict[str, Any]) -> list[PlannedLine]:
    """One request per line, its text wrapped in Boson's markers (e.g. `[music start]` ...
    `[music end]`) and `scene_note` added to the scene: the shape of `bgm` and `hum`.

    A marker the line already has (in any spelling normalize_text accepts) is not added again."""
    planned: list[PlannedLine] = []
    for index, line in enumerate(section.lines):
        speaker = speaker_of(line, section, ctx.project)
        planned.append(PlannedLine(
            section=section.id,
            speaker=speaker,
            display_text=line.text.strip(),
            request=request(ctx, line, section, index, text=wrap_in_markers(line.text, opening, closing),
                            history=ctx.voice_turns(speaker),
                            scene=solo_scene(ctx, line, section, speaker, scene_note)),
            pause_after=ctx.pause_for(line, section),
            extra=dict(extra),
        ))
    return planned
