"""A render's progress moves with the audio as it is generated, not only when lines finish (issue 16.12)."""

from __future__ import annotations

import io

import pytest
from fakes import FakeSession, make_project, section
from rich.console import Console

from higgs_cli.cli.progress import RenderBars
from higgs_cli.engine.request import FRAME_RATE
from higgs_cli.project.building.render import render_project


def batch_project(root, lines: int = 16):
    return make_project(root, [section("talk", "dialogue",
                                       *[("alice" if i % 2 else "bob", f"Line number {i} of the talk.")
                                         for i in range(lines)])])


class Recorder:
    """Every call a render makes, in order (a RenderProgress with expect())."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, sections):
        self.events.append(("start", sections))

    def expect(self, seconds):
        self.events.append(("expect", seconds))

    def frames(self, n):
        self.events.append(("frames", n))

    def line_done(self, section, seconds):
        self.events.append(("line", seconds))

    def stage(self, message):
        self.events.append(("stage", message))


def test_the_expected_audio_is_estimated_first_and_corrected_as_lines_finish(tmp_path):
    recorder = Recorder()
    summary = render_project(batch_project(tmp_path), FakeSession(), progress=recorder, batch_size=16)
    kinds = [e[0] for e in recorder.events]
    assert kinds[:2] == ["start", "expect"] and recorder.events[1][1] > 0  # an estimate before any frame
    assert kinds.index("frames") < kinds.index("line")  # audio is reported before the first line is done
    final = [e[1] for e in recorder.events if e[0] == "expect"][-1]
    assert final == pytest.approx(summary.generated_seconds)  # corrected to the true lengths
    made = sum(e[1] for e in recorder.events if e[0] == "frames") / FRAME_RATE
    assert made == pytest.approx(summary.generated_seconds)


def test_a_cached_render_expects_nothing(tmp_path):
    project = batch_project(tmp_path, lines=2)
    render_project(project, FakeSession())
    recorder = Recorder()
    render_project(project, FakeSession(), progress=recorder)
    assert [e for e in recorder.events if e[0] in ("expect", "frames", "line")] == [("expect", 0)]


class WatchedBars(RenderBars):
    """RenderBars that remember the top bar as it was when the first line finished."""

    first_line = None

    def line_done(self, section, seconds):
        if self.first_line is None:
            task = self.progress.tasks[self.overall]
            self.first_line = (task.completed, task.total, self._detail())
        super().line_done(section, seconds)


def test_the_bar_moves_in_audio_seconds_before_the_first_line_finishes(tmp_path):
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    with WatchedBars(console) as bars:
        summary = render_project(batch_project(tmp_path), FakeSession(), progress=bars, batch_size=16)
    completed, total, detail = bars.first_line
    assert completed > 0 and total is not None and total >= completed  # a total gives the bar an ETA
    assert detail.startswith("0/16 lines")
    task = bars.progress.tasks[bars.overall]
    assert task.total == pytest.approx(summary.generated_seconds) and task.completed == task.total
    assert bars._detail().startswith("16/16 lines")
    assert task.description == "assembling"
