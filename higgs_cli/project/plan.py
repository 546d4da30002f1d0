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
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from higgs_cli.engine.request import FRAME_RATE, Sampling, Turn
from higgs_cli.errors import HiggsError, UsageError, ValidationError
from higgs_cli.fsutil import atomic_path, file_sha256
from higgs_cli.plugins.manager import get_tasks
from higgs_cli.plugins.task import PlannedLine

if TYPE_CHECKING:
    from higgs_cli.project.model import Line, Project, Section

Encoder = Callable[[np.ndarray], np.ndarray]


class _NeedsModel(Exception):
    """Raised by the stand-in encoder when planning without a model."""


def _no_model(audio: np.ndarray) -> np.ndarray:
    raise _NeedsModel


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
                voice = self.library.get(spk.voice)
                codes = self.library.codes(spk.voice, self.codec_id, encode)
                return (Turn(text=(spk.transcript or voice.transcript or "").strip(), codes=np.asarray(codes)),)
            if spk.audio:
                return (Turn(text=(spk.transcript or "").strip(), codes=self._local_codes(Path(spk.audio), encode)),)
        except _NeedsModel:
            self.unresolved.add(name)
            # A stand-in that matches no cache entry: the speaker's lines show as missing.
            return (Turn(text=spk.transcript or "", codes=np.full((1, 1), -1)),)
        return ()

    def _local_codes(self, audio_path: Path, encode: Encoder) -> np.ndarray:
        """Codes of a project recording, cached by file content and codec."""
        try:
            digest = file_sha256(audio_path)
        except OSError as error:
            raise UsageError(f"cannot read the voice recording {audio_path}: {error.strerror}") from None
        name = hashlib.sha256(f"{digest}\0{self.codec_id}".encode()).hexdigest()[:40]
        cached = self.project.root / ".higgs" / "codes" / f"{name}.npy"
        if cached.is_file():
            try:
                return np.load(cached, allow_pickle=False)
            except (OSError, ValueError):
                cached.unlink(missing_ok=True)
        if encode is _no_model:
            raise _NeedsModel
        from higgs_cli.voices.library import prepare_reference  # the same preparation as library voices

        codes = np.asarray(encode(prepare_reference(audio_path)))
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached, suffix=".npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, codes)
        return codes

    def speaker_description(self, speaker: str) -> str | None:
        spk = self._speaker(speaker)
        if spk.description:
            return spk.description.strip()
        if spk.voice:
            return (self.library.get(spk.voice).description or "").strip() or None
        return None

    # -- defaults ----------------------------------------------------------------

    def sampling_for(self, line: Line, section: Section) -> Sampling:
        d = self.project.defaults
        return Sampling(temperature=d.temperature if line.temperature is None else line.temperature,
                        top_k=d.top_k, top_p=d.top_p, ras_window=d.ras_window, ras_max_repeat=d.ras_max_repeat)

    def seed_for(self, line: Line, section: Section, index: int) -> int:
        # Not offset by position: inserting a line must not change every later line's audio.
        return self.project.defaults.seed if line.seed is None else line.seed

    def pause_for(self, line: Line, section: Section) -> float:
        return self.project.defaults.pause if line.pause is None else line.pause

    def scene_for(self, line: Line, section: Section) -> str | None:
        return line.scene or section.scene or self.project.scene

    @property
    def max_frames(self) -> int:
        return max(1, round(self.project.defaults.max_seconds * FRAME_RATE))


def check_library_voices(project: Project, library=None) -> None:
    """Raise UsageError (with a did-you-mean) for the first speaker whose library voice is missing.

    A render calls this before it loads a model, so a misspelt voice costs no wait.
    """
    if not any(speaker.voice for speaker in project.speakers.values()):
        return
    if library is None:
        from higgs_cli.voices.library import VoiceLibrary

        library = VoiceLibrary()
    for speaker in project.speakers.values():
        if speaker.voice:
            try:
                library.get(speaker.voice)
            except ValidationError:
                raise
            except UsageError as error:
                where = f"{speaker.location}: " if speaker.location else ""
                raise UsageError(f"{where}speaker '{speaker.name}': {error.message}", hint=error.hint) from None


SPEECH_CHARS_PER_SECOND = 15.0  # brisk narration; a wide (CJK) character counts as 3


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


def check_render_length(project: Project, planned: list[PlannedLine]) -> None:
    """Refuse, before generating anything, a render estimated to run past output.max_hours."""
    seconds = sum(speech_seconds(line.display_text, line.request.max_frames / FRAME_RATE) + max(0.0, line.pause_after)
                  for line in planned)
    problem = length_problem(seconds, project.output.max_hours)
    if problem:
        raise UsageError(f"{project.file}: {problem}",
                         hint="split the project into several, or raise output.max_hours (at most 24)")


def plan_sections(project: Project, ctx: ProjectPlanContext) -> list[PlannedLine]:
    """Plan every section in order with its task; check what the tasks returned."""
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
        planned.extend(lines)
    return planned


def plan_project(project: Project, session, library=None) -> list[PlannedLine]:
    """Plan the whole project for `session` (its codec encodes voice references)."""
    ctx = ProjectPlanContext(project, codec_id=session.codec_id, encode=session.encode_audio, library=library)
    return plan_sections(project, ctx)


def global_context(planned: list[PlannedLine]) -> list[tuple[int, ...]]:
    """Each line's `context_from`, turned from section-relative into project-wide indexes."""
    result: list[tuple[int, ...]] = []
    start = 0
    for i, line in enumerate(planned):
        if i and line.section != planned[i - 1].section:
            start = i
        result.append(tuple(start + j for j in line.context_from))
    return result
