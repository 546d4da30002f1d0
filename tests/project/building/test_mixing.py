"""Mixing while generating (mixing.py) and the ordered worker map under it (threads.py)."""

from __future__ import annotations

import threading

import pytest
import soundfile as sf
from fakes import FakeSession, make_project, section

from higgs_cli.project import render_project
from higgs_cli.project.folder.store import Store
from higgs_cli.threads import ordered_map

WAIT_S = 30.0  # generous: the machine may be loaded; reached only when the overlap is broken


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(("higgs-work", "higgs-mix"))}


def test_ordered_map_keeps_order_and_joins_its_threads():
    assert list(ordered_map(lambda n: n * n, range(20), workers=3, ahead=4)) == [n * n for n in range(20)]
    assert list(ordered_map(str, [1, 2], workers=1)) == ["1", "2"]
    assert not _threads()


def test_ordered_map_stopped_early_or_failing_leaves_no_thread_running():
    started = []

    def work(n):
        started.append(n)
        if n == 5:
            raise ValueError("line 5 is bad")
        return n

    with pytest.raises(ValueError, match="line 5"):
        list(ordered_map(work, range(1000), workers=2, ahead=4))
    assert len(started) < 20  # the rest were never started
    mapped = ordered_map(lambda n: n, range(1000), workers=2)
    assert next(mapped) == 0
    mapped.close()
    assert not _threads()


class _WatchedStore(Store):
    """A Store that says when the mixer first reads a given entry."""

    key: str = ""
    read = threading.Event()

    def get(self, key):
        if key == self.key:
            self.read.set()
        return super().get(key)


class _WaitingSession(FakeSession):
    """Its second generate() call waits until the mixer has read the first line from the cache."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event
        self.overlapped = None

    def generate(self, requests, **kwargs):
        if self.generate_calls == 1:
            self.overlapped = self.event.wait(WAIT_S)
        return super().generate(requests, **kwargs)


def test_a_render_mixes_the_first_lines_while_later_ones_generate(tmp_path, monkeypatch):
    """Lines are mixed as they are cached: the first call's lines are read by the mixer before the
    second call returns. The build is the same as one assembled from the cache afterwards."""
    project = make_project(tmp_path, [section("talk", "dialogue", *[("alice", f"Line number {n}.")
                                                                    for n in range(6)])])
    watched = _WatchedStore(tmp_path)
    monkeypatch.setattr("higgs_cli.project.building.render.open_store", lambda project: watched)
    first = {}

    def remember_first(key, result, meta=None):
        first.setdefault("key", key)
        watched.key = first["key"]
        return Store.put(watched, key, result, meta)

    monkeypatch.setattr(watched, "put", remember_first)
    session = _WaitingSession(_WatchedStore.read)
    summary = render_project(project, session, batch_size=1)  # 4 lines per call: two calls
    assert session.generate_calls == 2 and session.overlapped is True
    assert not _threads()
    master = sf.read(summary.outputs["master"])[0]
    again = render_project(project, FakeSession())  # every line cached: mixed after the fact
    assert again.cached == 6
    assert (sf.read(again.outputs["master"])[0] == master).all()
