"""Where a render's time goes: exclusive wall time per stage, by wrapping the functions that do each stage.

`StageClock.install()` replaces a few module attributes (the functions a render calls for each stage)
with timed wrappers. Time is exclusive: a wrapped call inside another wrapped call counts for its own
stage only, so the stages add up to the wall time they cover. Generator functions are timed at each
step. A name that does not exist in the code under test (an older or newer revision) is skipped, so
the same clock measures old and new code alike. Used by bench_pipeline.py only.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
import time
from collections import defaultdict

# (module, attribute path, stage). Order matters only for reading.
STAGES: list[tuple[str, str, str]] = [
    ("higgs_cli.project.building.guards", "LineChecker.check", "guards"),
    ("higgs_cli.project.folder.store", "Store.put", "cache write"),
    ("higgs_cli.project.folder.store", "Store.get", "cache read"),
    ("higgs_cli.audio.cleanup", "highpass", "dc/high-pass"),
    ("higgs_cli.audio.cleanup", "remove_dc", "dc/high-pass"),
    ("higgs_cli.audio.master", "trim_silence", "trim"),
    ("higgs_cli.project.building.assemble", "write_audio", "stems"),
    ("higgs_cli.audio.master", "assemble_stream", "mix"),
    ("higgs_cli.project.building.mixing", "LineMixer.result", "mix (waited for)"),
    ("higgs_cli.audio.loudness", "LoudnessMeter.add", "loudness"),
    ("higgs_cli.audio.loudness", "TruePeakMeter.add", "true-peak measure"),
    ("higgs_cli.audio.loudness", "TruePeakMeter.finish", "true-peak measure"),
    ("higgs_cli.audio.master", "_limit", "limiter"),
    ("higgs_cli.audio.master", "master_blocks", "limiter (waited for)"),
    ("higgs_cli.project.building.mastering", "write_audio_blocks", "encode"),
    ("higgs_cli.audio.subtitles", "build_cues", "subtitles"),
    ("higgs_cli.audio.subtitles", "to_srt", "subtitles"),
    ("higgs_cli.audio.subtitles", "to_webvtt", "subtitles"),
    ("higgs_cli.project.building.review", "Peaks.add", "review page"),
    ("higgs_cli.project.building.assemble", "render_review", "review page"),
    ("higgs_cli.project.folder.manifest", "BuildManifest.write", "manifest"),
    ("higgs_cli.project.building.assemble", "assembly_digest", "manifest"),
    ("higgs_cli.project.building.render", "record_snapshot", "snapshot"),
    ("higgs_cli.project.building.render", "plan_project", "plan"),
    ("higgs_cli.project.building.render", "line_keys", "plan"),
]


class StageClock:
    """Exclusive seconds per stage over the calls made while installed, on any thread: a stage run on
    worker threads counts the seconds of each (`threaded` names the stages some worker ran)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.threaded: set[str] = set()
        self._local = threading.local()  # each thread's stack of [stage, started, child seconds]
        self._lock = threading.Lock()
        self._undo: list[tuple[object, str, object]] = []

    @property
    def _stack(self) -> list[list]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def _enter(self, stage: str) -> None:
        self._stack.append([stage, time.perf_counter(), 0.0])

    def _leave(self) -> None:
        stack = self._stack
        stage, started, children = stack.pop()
        spent = time.perf_counter() - started
        with self._lock:
            self.seconds[stage] += spent - children
            self.calls[stage] += 1
            if threading.current_thread() is not threading.main_thread():
                self.threaded.add(stage)
        if stack:
            stack[-1][2] += spent

    def wrap(self, fn, stage: str):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args, **kwargs):
                inner = fn(*args, **kwargs)
                while True:
                    self._enter(stage)
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                    finally:
                        self._leave()
                    yield item
            return gen

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            self._enter(stage)
            try:
                return fn(*args, **kwargs)
            finally:
                self._leave()
        return timed

    def install(self, stages=STAGES) -> StageClock:
        for module_name, path, stage in stages:
            try:
                owner = importlib.import_module(module_name)
            except ImportError:
                continue
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent, None)
            fn = getattr(owner, name, None) if owner is not None else None
            if fn is None or getattr(fn, "__wrapped__", None) is not None:
                continue
            self._undo.append((owner, name, owner.__dict__.get(name, fn)))
            setattr(owner, name, self.wrap(fn, stage))
        return self

    def uninstall(self) -> None:
        for owner, name, fn in reversed(self._undo):
            setattr(owner, name, fn)
        self._undo.clear()
