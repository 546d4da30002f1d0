"""Progress display for generation: audio seconds made and frames per second."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
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


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    if not out.show_progress:
        yield
        return
    with out.err.status(message):
        yield


def load_session(model: str | None, *, revision: str | None = None, device: str | None = None,
                 project_model: str | None = None, compile: bool = False):
    """Load a ModelSession with a spinner. Commands say that weights are random (`out.random_weights`)
    where their output is made: a render may not load the model at all."""
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
