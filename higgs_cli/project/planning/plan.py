"""Planning: every section of a project, through its task plugin, into PlannedLines.

`ProjectPlanContext` is what tasks see while planning: voices resolved to
reference Turns, and the project's defaults applied to each line. Voice codes
are cached (library voices by the library, project recordings under
`<project>/.higgs/codes/`), so planning a second time needs no model; `status`
plans with no model at all (`encode=None`) and marks any voice it could not
resolve from those caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from higgs_cli.engine.request import Sampling, Turn, seconds_to_frames
from higgs_cli.errors import HiggsError, UsageError, ValidationError
from higgs_cli.fsutil import file_sha256
from higgs_cli.plugins.helpers import join_scene
from higgs_cli.plugins.script import Line, Project, Section
from higgs_cli.plugins.task import PlannedLine, Task
from higgs_cli.project.layout import ProjectLayout
from higgs_cli.project.planning.refs import source_lines
from higgs_cli.project.reading.length import check_render_length, length_problem, speech_seconds
from higgs_cli.project.reading.lexicon import apply_lexicon
from higgs_cli.voices.codes import CodesCache
from higgs_cli.voices.reference_turn import ResolvedVoice, library_voice, reference_turn

__all__ = ["ProjectPlanContext", "check_library_voices", "check_render_length", "global_context",
           "is_placeholder", "length_problem", "library_voice_warnings", "plan_project", "plan_sections",
           "speech_seconds"]

Encoder = Callable[[np.ndarray], np.ndarray]


class _NeedsModel(Exception):
    """Raised by the stand-in encoder when planning without a model."""


def _no_model(audio: np.ndarray) -> np.ndarray:
    raise _NeedsModel


def _placeholder_codes() -> np.ndarray:
    """The stand-in codes of a voice that needs the model: -1 is never a real code (CodesCache
    refuses negative codes), so no line planned with them matches a cache entry."""
    return np.full((1, 1), -1)


def is_placeholder(item: Turn | np.ndarray | None) -> bool:
    """Whether a Turn (or its codes) holds the planner's stand-in for codes not encoded yet."""
    codes = item.codes if isinstance(item, Turn) else item
    return codes is not None and np.asarray(codes).size > 0 and int(np.asarray(codes).min()) < 0


class ProjectPlanContext:
    """The PlanContext for one project, one codec and (optionally) one encoder."""

    def __init__(self, project: Project, *, codec_id: str, encode: Encoder | None = None, library=None) -> None:
        self.project = project
        self.codec_id = codec_id
        self._encode = encode
        self._library = library
        self._turns: dict[str, tuple[Turn, ...]] = {}
        self.unresolved: set[str] = set()  # speakers whose codes need the model (status only)

    # -- voices ----------------------------------------------------------------

    @property
    def library(self):
        if self._library is None:
            from higgs_cli.voices.library import VoiceLibrary

            self._library = VoiceLibrary()
        return self._library

    def _speaker(self, name: str):
        try:
            return self.project.speakers[name]
        except KeyError:
            raise UsageError(f"unknown speaker '{name}'", hint="add it under `speakers:` in the project file") \
                from None

    def voice_turns(self, speaker: str) -> tuple[Turn, ...]:
        if speaker not in self._turns:
            self._turns[speaker] = self._resolve(speaker)
        return self._turns[speaker]

    def _resolve(self, name: str) -> tuple[Turn, ...]:
        spk = self._speaker(name)
        encode = self._encode or _no_model
        try:
            if spk.voice:
                voice = library_voice(spk.voice, self.library, transcript=spk.transcript)
                return (reference_turn(voice, codec_id=self.codec_id, encode=encode, library=self.library),)
            if spk.audio:
                codes = self._local_codes(Path(spk.audio), encode)
                return (reference_turn(ResolvedVoice(spk.transcript or "", codes=codes)),)
        except _NeedsModel:
            self.unresolved.add(name)
            # A stand-in that matches no cache entry (see is_placeholder): status shows the lines as unknown.
            return (reference_turn(ResolvedVoice(spk.transcript or "", codes=_placeholder_codes())),)
        return ()

    def _local_codes(self, audio_path: Path, encode: Encoder) -> np.ndarray:
        """Codes of a project recording, cached by file content and codec and checked like a
        library voice's (a damaged cache file is encoded again)."""
        try:
            digest = file_sha256(audio_path)
        except OSError as error:
            raise UsageError(f"cannot read the voice recording {audio_path}: {error.strerror}") from None
        key = hashlib.sha256(f"{digest}\0{self.codec_id}".encode()).hexdigest()[:40]
        cache = CodesCache(ProjectLayout(self.project.root).codes_dir)
        if encode is _no_model:  # status: only what is cached
            codes = cache.get(key)
            if codes is None:
                raise _NeedsModel
            return codes
        from higgs_cli.voices.reference import prepare_reference  # the same preparation as library voices

        try:
            return cache.get_or_encode(key, lambda: prepare_reference(audio_path), encode)
        except ValueError as error:  # the encoder returned something that is not codes
            raise HiggsError(f"cannot encode the voice recording {audio_path}: {error}") from None

    def speaker_description(self, speaker: str) -> str | None:
        spk = self._speaker(speaker)
        if spk.description:
            return spk.description.strip()
        if spk.voice:
            return (self.library.get(spk.voice).description or "").strip() or None
        return None

    # -- defaults ----------------------------------------------------------------

    def sampling_for(self, line: Line, section: Section) -> Sampling:
        # A section's settings were already applied to its lines by the loader.
        given = {"temperature": line.temperature, "ras_window": line.ras_window, "ras_max_repeat": line.ras_max_repeat}
        return replace(self.project.defaults.sampling, **{k: v for k, v in given.items() if v is not None})

    def seed_for(self, line: Line, section: Section, index: int) -> int:
        # Not offset by position: inserting a line must not change every later line's audio.
        return self.project.defaults.seed if line.seed is None else line.seed

    def pause_for(self, line: Line, section: Section) -> float:
        return self.project.defaults.pause if line.pause is None else line.pause

    def retries_for(self, line: Line | None, section: Section) -> int:
        """The line's `retries:` (a line or section key), else `defaults.retries`."""
        return self.project.defaults.retries if line is None or line.retries is None else line.retries

    def scene_for(self, line: Line, section: Section) -> str | None:
        scene = line.scene or section.scene or self.project.scene  # a line's own scene: replaces the others
        if not line.direction:
            return scene
        # a line's direction ("stern") joins the scene instead of replacing it
        return join_scene(scene, f"Delivery: {line.direction}")

    @property
    def max_frames(self) -> int:
        return seconds_to_frames(self.project.defaults.max_seconds)


def _library_voice_errors(project: Project, library=None) -> list[UsageError]:
    """One UsageError (with a did-you-mean) per speaker whose library voice is missing."""
    if not any(speaker.voice for speaker in project.speakers.values()):
        return []
    if library is None:
        from higgs_cli.voices.library import VoiceLibrary

        library = VoiceLibrary()
    errors = []
    for speaker in project.speakers.values():
        if speaker.voice:
            try:
                library.get(speaker.voice)
            except ValidationError:  # a damaged library voice: its own message, not "missing"
                raise
            except UsageError as error:
                where = f"{speaker.location}: " if speaker.location else ""
                errors.append(UsageError(f"{where}speaker '{speaker.name}': {error.message}", hint=error.hint))
    return errors


def check_library_voices(project: Project, library=None) -> None:
    """Raise UsageError for the first speaker whose library voice is missing.

    A render calls this before it loads a model, so a misspelt voice costs no wait.
    """
    errors = _library_voice_errors(project, library)
    if errors:
        raise errors[0]


def library_voice_warnings(project: Project, library=None) -> list[str]:
    """What `project validate` warns about: each speaker whose `voice:` is not in the library
    (a render would refuse it), as "file:line:col: speaker 'x': ... (hint: ...)"."""
    return [f"{error.message} (hint: {error.hint})" if error.hint else error.message
            for error in _library_voice_errors(project, library)]


def plan_sections(project: Project, ctx: ProjectPlanContext, *, tasks: Mapping[str, Task] | None = None
                  ) -> list[PlannedLine]:
    """Plan every section in order with its task from `tasks` (None: the installed plugins' tasks);
    check what the tasks returned."""
    if tasks is None:
        from higgs_cli.plugins.manager import get_tasks

        tasks = get_tasks()
    planned: list[PlannedLine] = []
    for section in project.sections:
        task = tasks.get(section.task)
        if task is None:
            where = f"{section.location}: " if section.location else ""
            raise ValidationError("the project cannot be planned",
                                  [f"{where}unknown task '{section.task}' (installed: {', '.join(sorted(tasks))})"],
                                  hint="see `higgs plugins list`")
        lines = task.plan(section, ctx)
        for i, line in enumerate(lines):
            if line.section != section.id:
                raise HiggsError(f"task '{task.name}' planned a line for section '{line.section}' "
                                 f"while planning '{section.id}'")
            if any(not 0 <= j < i for j in line.context_from):
                raise HiggsError(f"task '{task.name}' gave line {i} of section '{section.id}' the context "
                                 f"{line.context_from}: context must name earlier lines of the same section")
        sources = source_lines(project, lines)  # a line's retries, resolved here unless its task did
        planned.extend(line if line.retries is not None else replace(line, retries=ctx.retries_for(source, section))
                       for line, source in zip(lines, sources, strict=True))
    return apply_lexicon(planned, project.lexicon)  # what the model reads; display text stays the script's


def plan_project(project: Project, session, library=None, *, tasks: Mapping[str, Task] | None = None,
                 store=None) -> list[PlannedLine]:
    """Plan the whole project for `session` (its codec encodes voice references) with the task
    registry `tasks` (None: the installed plugins' tasks). With a shared render cache as `store`
    (a RemoteStore), voice codes are read from it before the model encodes them, and shared."""
    encode = session.encode_audio
    if hasattr(store, "encoder"):
        encode = store.encoder(encode, session.codec_id)
    ctx = ProjectPlanContext(project, codec_id=session.codec_id, encode=encode, library=library)
    return plan_sections(project, ctx, tasks=tasks)


def global_context(planned: list[PlannedLine]) -> list[tuple[int, ...]]:
    """Each line's `context_from`, turned from section-relative into project-wide indexes."""
    result: list[tuple[int, ...]] = []
    start = 0
    for i, line in enumerate(planned):
        if i and line.section != planned[i - 1].section:
            start = i
        result.append(tuple(start + j for j in line.context_from))
    return result
