"""Running out of memory during a render (issue 18): the engine says so without torch in the
message's type (errors.OutOfMemory); the render halves its batch and goes on, with the same audio;
at batch size 1 it stops with a clear error, and what it made stays cached."""

from __future__ import annotations

import pytest
from fakes import FakeSession, make_project, section

from higgs_cli.errors import HiggsError, OutOfMemory
from higgs_cli.project.building.render import render_project
from higgs_cli.project.folder.store import Store


class TightSession(FakeSession):
    """A FakeSession whose memory holds at most `fits` lines at once (None: not even one)."""

    def __init__(self, fits: int | None, *, calls_that_fit: int = 0) -> None:
        super().__init__()
        self.fits = fits
        self.calls_that_fit = calls_that_fit  # with fits=None: the first calls still fit
        self.sizes: list[int] = []

    def generate(self, requests, *, batch_size=8, progress=None):
        self.sizes.append(batch_size)
        if (self.fits is None and len(self.sizes) > self.calls_that_fit) or (self.fits and batch_size > self.fits):
            raise OutOfMemory(f"out of memory generating {len(requests)} lines at batch size {batch_size}",
                              batch_size=batch_size)
        return super().generate(requests, batch_size=batch_size, progress=progress)


def show(root):
    return make_project(root, [section("talk", "dialogue", *[("alice" if n % 2 else "bob", f"Line number {n}.")
                                                             for n in range(6)])])


def test_a_render_that_runs_out_of_memory_lowers_its_batch_and_gets_the_same_audio(tmp_path):
    roomy = render_project(show(tmp_path / "a"), FakeSession(), batch_size=8)
    tight = TightSession(fits=2)
    summary = render_project(show(tmp_path / "b"), tight, batch_size=8)
    assert tight.sizes[:3] == [8, 4, 2] and set(tight.sizes[2:]) == {2}
    assert summary.generated == roomy.generated == 6
    assert open(summary.outputs["master"], "rb").read() == open(roomy.outputs["master"], "rb").read()


def test_out_of_memory_at_batch_size_one_stops_cleanly_with_nothing_lost(tmp_path):
    project = show(tmp_path / "c")
    with pytest.raises(HiggsError, match="4 line.s. generated in this render are cached") as error:
        render_project(project, TightSession(fits=None, calls_that_fit=1), batch_size=1)  # 4 lines a call
    assert not isinstance(error.value, OutOfMemory) and error.value.hint
    assert not any((tmp_path / "c" / "build").glob("*.wav"))  # no outputs from a render that did not finish
    assert len(list(Store(project.root).dir.glob("*.npz"))) == 4
    summary = render_project(project, FakeSession())  # memory enough again: it goes on from there
    assert (summary.generated, summary.cached) == (2, 4)


def test_the_engine_reports_an_allocator_failure_as_out_of_memory(tiny_session, monkeypatch):
    import torch

    from higgs_cli.engine.request import GenerationRequest

    def fail(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tiny_session, "generate_frames", fail)
    with pytest.raises(OutOfMemory, match="at batch size 4 .*Tried to allocate") as error:
        tiny_session.generate([GenerationRequest(text="Hello.")], batch_size=4)
    assert error.value.batch_size == 4 and "--batch-size" in error.value.hint
