"""Progress display for generation: audio seconds made, frames per second, and a render's bars."""

from __future__ import annotations

import contextlib
import sys
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


def load_session(model: str | None, *, revision: str | None = None, device: str | None = None,
                 project_model: str | None = None, compile: bool = False, server: str | None = None,
                 no_server: bool = False):
    """A session to generate with: a running server's (`--server`, $HIGGS_SERVER, or a live local
    one serving the model asked for; not with `--no-server`), else a ModelSession loaded here with a
    spinner. Says on stderr which it is. Commands say that weights are random (`out.random_weights`)
    where their output is made: a render may not load the model at all."""
    from higgs_cli.server.connect import choose_server

    remote = choose_server(server=server, no_server=no_server, model=model, revision=revision,
                           project_model=project_model)
    if remote is not None:
        if device or compile:
            out.warn("--device and --compile are the server's to choose (--device still places a project's "
                     "speech recognition, which runs here); ignored for " + remote.url)
        out.note(f"using the higgs server at {remote.url} (model {remote.name} on {remote.device}); "
                 "--no-server loads the model here")
        return remote
    started = time.perf_counter()
    with status("loading the model..."):
        from higgs_cli.engine.session import ModelSession, resolve_model

        session = ModelSession.load(resolve_model(model, project_model), revision=revision, device=device,
                                    compile=compile)
    info = session.info()
    out.note(f"model {info.name} on {info.device} ({info.dtype}), loaded in {time.perf_counter() - started:.1f} s")
    if compile:
        out.note("--compile: each new decode step compiles on first use (on CPU about a minute the first time; "
                 "kept on disk for later runs)")
    return session


def session_identity(model: str | None, *, revision: str | None = None, project_model: str | None = None,
                     server: str | None = None, no_server: bool = False):
    """What keys the lines a lazy session will generate: the model of the server `load_session` will
    use (none asked: whatever it serves), else the local checkpoint's fingerprints (None when they
    cannot be read cheaply)."""
    from higgs_cli.project.lazy import ModelIdentity, model_identity
    from higgs_cli.server.connect import choose_server

    remote = choose_server(server=server, no_server=no_server, model=model, revision=revision,
                           project_model=project_model)
    if remote is None:
        return model_identity(model, revision=revision, project_model=project_model)
    remote.close()
    return ModelIdentity(remote.name, remote.model_id, remote.codec_id, remote.is_random)


def describe_session(session) -> dict:
    """Which session a command used, for its --json output: a server (its URL), this process, or
    none (a render whose lines were all cached loads no model)."""
    from higgs_cli.project.lazy import LazySession
    from higgs_cli.server.client import RemoteSession

    if isinstance(session, LazySession):
        if not session.loaded:
            return {"kind": "none"}
        session = session.session
    if isinstance(session, RemoteSession):
        return session.describe()
    ray_sessions = sys.modules.get("higgs_cli.distributed.ray_session")  # loaded only if Ray was used (an extra)
    if ray_sessions is not None and isinstance(session, ray_sessions.RaySession):
        return session.describe()
    return {"kind": "in-process", "model": session.name}
