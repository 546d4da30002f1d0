"""The front half of a build, done while lines are still being generated: each line, once cached, is
read, made DC-free and trimmed (its stem's audio), high-passed and mixed, in the project's order, into a
temporary file of samples while its loudness is measured.

A render (render.py) starts a `LineMixer` before generation and tells it which lines are ready (the
cached ones at once, each generated one when the render has cached it); a thread mixes them in order
as they come, a few lines prepared at a time on worker threads (threads.py), so when the last line is
generated only its own mixing and the master are left (assemble.py). The mixer writes no file under a
name: the mix and the stems' audio go to anonymous temporary files, and assemble.py writes the stems
on the render's thread. `close()` stops and joins every thread it started (Ctrl-C included) before the
render goes on unwinding.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from higgs_cli.audio.profiles import apply_profile
from higgs_cli.errors import HiggsError
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.building.mastering import line_highpass
from higgs_cli.project.folder.names import section_numbers
from higgs_cli.project.folder.store import Store
from higgs_cli.threads import ordered_map

if TYPE_CHECKING:
    from higgs_cli.audio.loudness import LoudnessMeter
    from higgs_cli.plugins.script import Project

_WAIT_S = 0.2  # how often a waiting thread looks whether it was told to stop


class _Stopped(Exception):
    """The mixer was closed before every line came."""


@dataclass
class Mix:
    """The mixed track (float32 samples in `file`), its length and spans, its loudness so far, and
    each kept line's DC-free trimmed audio for its stem (`stem_audio`)."""

    file: IO[bytes]
    total: int
    spans: list[tuple[float, float]]
    meter: LoudnessMeter
    energy: float
    stems: IO[bytes]
    stem_at: dict[int, tuple[int, int]] = field(default_factory=dict)  # line -> (first sample, samples)

    def stem_audio(self, i: int) -> np.ndarray:
        at, size = self.stem_at[i]
        self.stems.seek(at * 4)
        return np.frombuffer(self.stems.read(size * 4), dtype=np.float32)


class LineMixer:
    """Mixes the lines `kept` (indexes into `planned`, in order) as `ready` says they are cached."""

    def __init__(self, project: Project, planned: list[PlannedLine], keys: list[str], kept: list[int],
                 store: Store, *, folder: Path) -> None:
        self.settings = apply_profile(project.output)
        self.planned, self.keys, self.kept, self.store = planned, keys, list(kept), store
        self.corners = line_highpass(project, planned, self.settings.highpass)
        self.numbers = section_numbers(planned)
        folder.mkdir(parents=True, exist_ok=True)
        self._mix_file = tempfile.TemporaryFile(dir=folder)
        self._stems_file = tempfile.TemporaryFile(dir=folder)
        self._ready: set[int] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._result: Mix | None = None
        self._error: BaseException | None = None

    def ready(self, lines: Iterable[int]) -> None:
        """These lines are in the cache now (any thread may call it)."""
        with self._cond:
            self._ready.update(lines)
            self._cond.notify_all()

    def start(self) -> LineMixer:
        self._thread = threading.Thread(target=self._run, name="higgs-mix", daemon=True)
        self._thread.start()
        return self

    def result(self) -> Mix:
        """Wait until every kept line is mixed; raise what the mixing raised."""
        missing = [i for i in self.kept if i not in self._ready]
        if missing:  # the render's bookkeeping is wrong: waiting would never end
            raise RuntimeError(f"lines {missing[:5]} were never cached, so they cannot be mixed")
        if self._thread is None:
            self.start()
        while self._thread.is_alive():
            self._thread.join(_WAIT_S)  # in steps, so that Ctrl-C is seen at once
        if self._error is not None:
            raise self._error
        return self._result

    def close(self) -> None:
        """Stop (at the next line) and join the mixer's threads; drop its temporary files."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        self._mix_file.close()
        self._stems_file.close()

    def __enter__(self) -> LineMixer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _in_order(self) -> Iterator[int]:
        for i in self.kept:
            with self._cond:
                while i not in self._ready and not self._stop:
                    self._cond.wait(_WAIT_S)
                if self._stop:
                    raise _Stopped
            yield i

    def _run(self) -> None:
        try:
            self._result = self._mix()
        except BaseException as error:  # noqa: BLE001 (handed to the render's thread by result())
            self._error = error

    def _prepare(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Line i's stem audio (DC-free, trimmed) and what goes into the mix (high-passed)."""
        from higgs_cli.audio.cleanup import DC_BLOCK_HZ, highpass, remove_dc
        from higgs_cli.audio.master import trim_silence

        entry = self.store.get(self.keys[i])
        if entry is None:
            raise HiggsError(f"the cache entry of {self.planned[i].section}:{self.numbers[i] + 1} vanished "
                             f"during the render", hint="render again")
        audio = remove_dc(entry.audio)  # before trimming: an offset would read as sound
        if self.settings.trim_silence:
            trimmed = trim_silence(audio)
            audio = trimmed if trimmed.size else audio  # an all-silent line keeps its length
        corner = self.corners[i]
        return audio, highpass(audio, corner) if corner > DC_BLOCK_HZ else audio

    def _mix(self) -> Mix:
        from higgs_cli.audio.loudness import LoudnessMeter
        from higgs_cli.audio.master import assemble_stream

        meter = LoudnessMeter()
        mix = Mix(file=self._mix_file, total=0, spans=[], meter=meter, energy=0.0, stems=self._stems_file)
        at = 0

        def clips(prepared: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
            nonlocal at
            for i, (audio, mixed) in zip(self.kept, prepared, strict=True):
                self._stems_file.write(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
                mix.stem_at[i] = (at, audio.size)
                at += audio.size
                yield mixed

        def sink(piece: np.ndarray) -> None:
            meter.add(piece)
            wide = piece.astype(np.float64)
            mix.energy += float(np.dot(wide, wide))
            self._mix_file.write(np.ascontiguousarray(piece, dtype=np.float32).tobytes())

        prepared = ordered_map(self._prepare, self._in_order())
        try:
            mix.total, mix.spans = assemble_stream(clips(prepared), len(self.kept),
                                                   [self.planned[i].pause_after for i in self.kept[:-1]], sink,
                                                   crossfade_ms=self.settings.crossfade_ms)
        finally:
            prepared.close()  # its threads joined now
        self._mix_file.flush()
        self._stems_file.flush()
        return mix
