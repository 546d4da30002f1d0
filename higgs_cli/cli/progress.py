"""Progress display for generation: audio seconds made, frames per second, a render's bars, and the
notes a session reports while it opens."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from higgs_cli.cli.output import out
from higgs_cli.engine.request import FRAME_RATE
from higgs_cli.sessions.open import Notes


class AudioRateColumn(ProgressColumn):
    """Audio seconds generated so far and frames generated per wall-clock second."""

    def render(self, task) -> Text:
        frames = task.completed
        elapsed = task.elapsed or 0.0
        rate = frames / elapsed if elapsed > 0 else 0.0
        return Text(f"{frames / FRAME_RATE:6.1f} s audio  {rate:6.1f} frames/s", style="cyan")


@contextlib.contextmanager
def generation_progress(description: str, total_frames: int | None) -> Iterator:
    """Yield a callback `advance(frames)`; renders a bar unless --json/--quiet."""
    if not out.show_progress:
        yield lambda frames: None
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), AudioRateColumn(),
               TimeElapsedColumn()]
    with Progress(*columns, console=out.err, transient=True) as progress:
        task = progress.add_task(description, total=total_frames)
        yield lambda frames: progress.advance(task, frames)


class AudioSecondsColumn(ProgressColumn):
    """Seconds of audio made of the seconds expected ("12.3/80.0 s audio"); lines count otherwise."""

    def render(self, task) -> Text:
        if not task.fields.get("audio"):
            return Text(f"{task.completed:.0f}/{task.total:.0f} lines" if task.total else "", style="cyan")
        total = f"{task.total:.1f}" if task.total is not None else "?"
        return Text(f"{task.completed:.1f}/{total} s audio", style="cyan")


class RenderBars:
    """Rich progress for a render (a `project.render.RenderProgress`).

    The top bar counts seconds of audio as the engine makes them, against the
    seconds expected (estimated from the text, corrected as lines finish), so it
    moves and has an ETA long before a batch of lines is done; a line count and
    the generation speed sit beside it. Below it, one bar per section with
    lines to generate counts finished lines.
    """

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(), AudioSecondsColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[detail]}", markup=False),
                                 console=console, transient=True)
        self.overall = None
        self.sections: dict[str, int] = {}
        self.lines = self.lines_done = 0
        self.frames_done = 0
        self.started = time.monotonic()

    def __enter__(self) -> RenderBars:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def start(self, sections: list[tuple[str, int, int]]) -> None:
        self.lines = sum(n - cached for _, n, cached in sections)
        self.overall = self.progress.add_task("generating", total=None, audio=True, detail=self._detail())
        for section, n, cached in sections:
            if n > cached:
                self.sections[section] = self.progress.add_task(f"  {section}", total=n, completed=cached,
                                                                detail="")
        self.started = time.monotonic()

    def expect(self, seconds: float) -> None:
        if self.overall is not None:  # never below what is made already: an estimate can be short
            self.progress.update(self.overall, total=max(seconds, self.frames_done / FRAME_RATE))

    def frames(self, n: int) -> None:
        self.frames_done += n
        if self.overall is None:
            return
        made = self.frames_done / FRAME_RATE
        task = self.progress.tasks[self.overall]
        total = None if task.total is None else max(task.total, made)
        self.progress.update(self.overall, completed=made, total=total, detail=self._detail())

    def line_done(self, section: str, seconds: float) -> None:
        self.lines_done += 1
        if self.overall is not None:
            self.progress.update(self.overall, detail=self._detail())
        if section in self.sections:
            self.progress.advance(self.sections[section])

    def stage(self, message: str) -> None:
        if self.overall is not None:
            task = self.progress.tasks[self.overall]
            self.progress.update(self.overall, description=message, completed=task.total or task.completed)

    def _detail(self) -> str:
        elapsed = time.monotonic() - self.started
        speed = f", {self.frames_done / FRAME_RATE / elapsed:.1f} audio s/s" if self.frames_done and elapsed > 0 else ""
        return f"{self.lines_done}/{self.lines} lines{speed}"


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    if not out.show_progress:
        yield
        return
    with out.err.status(message):
        yield


# Where opening a session reports (sessions.open.Notes): notes and warnings on stderr, a spinner while
# the model loads. Read through `out` at call time, so --json and -q apply.
SESSION_NOTES = Notes(note=lambda text: out.note(text), warn=lambda text: out.warn(text), busy=lambda m: status(m))
