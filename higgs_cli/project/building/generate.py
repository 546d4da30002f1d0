"""The generation loop of a render: what the cache lacks goes to the model in dependency waves.

`render.py` decides which lines are missing and how each request is built (a
line hears the audio of its `context_from` lines, as rendered); this module
sends them to the session in batches, reports progress, and hands every
finished line to the render, which caches it at once, so an interrupted render
resumes where it stopped. The quality guards (guards.py) check each result
here, and a flagged line is generated again with another seed. The render
hands over one `PendingLine` per line (what it hears, its retries, its
expected length) and a `LineSink` (requests out, results in).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from higgs_cli.engine.request import GenerationRequest, GenerationResult
from higgs_cli.errors import HiggsError, OutOfMemory
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.building.guards import LineChecker, rank

CALL_BATCHES = 4  # requests per generate() call, in batches: the engine refills slots as lines finish,
# and an interruption loses at most this many batches of work


@dataclass
class LineReport:
    """How one line's kept result came about: the guards' flags on it, the tries made, the seed used."""

    seed: int
    tries: int = 1
    flags: list[dict] = field(default_factory=list)  # {"code": ..., "message": ...} of the kept try


@dataclass
class GenerationStats:
    generated: set[int] = field(default_factory=set)  # indexes of the lines made by the model
    seconds: float = 0.0  # audio seconds produced (kept results)
    spent: float = 0.0  # wall seconds inside session.generate()
    reports: dict[int, LineReport] = field(default_factory=dict)
    tried_seconds: float = 0.0  # audio seconds of every try, the kept ones and the ones thrown away

    @property
    def flagged(self) -> list[int]:
        """Lines whose kept try still has flags (its retries ran out)."""
        return sorted(i for i, report in self.reports.items() if report.flags)

    @property
    def retried(self) -> list[int]:
        """Lines generated more than once."""
        return sorted(i for i, report in self.reports.items() if report.tries > 1)


def retry_seed(seed: int, attempt: int) -> int:
    """The seed of try `attempt` of a line whose own seed is `seed` (attempt 0: the seed itself).

    Derived, not drawn, so a render from an empty cache stays deterministic; spread by a hash so
    that neighbouring lines (seeds n, n+1) do not share retry seeds.
    """
    if attempt == 0:
        return seed
    digest = hashlib.blake2b(f"higgs retry {seed} {attempt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")  # within the engine's seed range, 0 .. 2**32 - 1


@dataclass
class _Tries:
    """The tries of one line so far, and the best of them."""

    made: int = 0
    best: GenerationResult | None = None
    best_seed: int = 0
    best_flags: list[dict] = field(default_factory=list)
    best_rank: tuple = ()


@dataclass(frozen=True)
class PendingLine:
    """One line a render must generate, with what the loop needs to know of it."""

    index: int  # into the render's planned lines (the key of stats and of the sink's calls)
    line: PlannedLine | None = None  # what the `check_line` hook sees (None: a stand-in from the request)
    after: tuple[int, ...] = ()  # indexes of other pending lines it hears: it is sent once they are done
    retries: int = 0  # how many more tries it gets when the guards flag it
    seconds: float = 0.0  # its expected length, for progress


class LineSink(Protocol):
    """The render's side of the loop: each line's request, built when it is sent (with the audio of
    the lines it hears), and each kept result, cached at once."""

    def request(self, pending: PendingLine) -> GenerationRequest: ...

    def done(self, pending: PendingLine, result: GenerationResult, report: LineReport) -> None: ...


def generate_missing(session, lines: Sequence[PendingLine], sink: LineSink, *, batch_size: int, progress,
                     checks: Callable[[], LineChecker] = LineChecker) -> GenerationStats:
    """Generate every line of `lines` on `session`, `batch_size` rows at a time.

    A line is sent once every line in its `after` is done; `sink.request` makes its request then;
    `sink.done` receives each kept result, once. `progress` is a RenderProgress. `checks()` makes
    the quality checks (guards.py), only when there is a line to generate (so a render from the
    cache never looks at an ASR model). A flagged line with retries left goes to the next call
    again, first in line, with `retry_seed(seed, try)`; when it is clean or out of retries, its
    best try goes to `sink.done`.
    """
    stats = GenerationStats()
    pending = list(lines)
    tries: dict[int, _Tries] = {}
    # The audio still to come, so a display can show seconds made of seconds expected (and an
    # ETA) before a whole line is done. Progress objects from before expect() still work.
    expect = getattr(progress, "expect", None) or (lambda seconds: None)
    expected = sum(line.seconds for line in pending)
    expect(expected)
    checker = checks() if pending else None
    while pending:
        ready = [line for line in pending if all(j in stats.generated for j in line.after)]
        if not ready:  # plan_sections only allows earlier context lines, so this is a bug
            raise HiggsError("render stalled: lines wait on context that is never generated")
        ready.sort(key=lambda line: line.index not in tries)  # retries first: they do not wait behind new lines
        batch = ready[:batch_size * CALL_BATCHES]
        requests = []
        for line in batch:
            request = sink.request(line)
            made = tries[line.index].made if line.index in tries else 0
            requests.append(request if made == 0 else replace(request, seed=retry_seed(request.seed, made)))
        started = time.perf_counter()
        try:
            out = session.generate(requests, batch_size=batch_size, progress=progress.frames)
        except OutOfMemory as error:
            stats.spent += time.perf_counter() - started
            batch_size = _smaller_batch(error, batch_size, done=len(stats.generated))
            (getattr(progress, "stage", None) or (lambda message: None))(
                f"out of memory: going on at batch size {batch_size}")
            continue  # the same lines again (earlier calls' results are cached already)
        stats.spent += time.perf_counter() - started
        if len(out) != len(batch):
            raise HiggsError(f"the model returned {len(out)} results for {len(batch)} requests")
        for line, request, result in zip(batch, requests, out, strict=True):
            state = tries.setdefault(line.index, _Tries())
            flags = checker.check(request, result, line.line)
            key = rank(flags, state.made)
            state.made += 1
            if state.best is None or key < state.best_rank:
                state.best, state.best_seed, state.best_flags, state.best_rank = result, request.seed, flags, key
            stats.tried_seconds += result.seconds
            expected += result.seconds - line.seconds
            # Greedy decoding (temperature 0) ignores the seed: another try would give the same codes.
            if flags and checker.enabled and state.made <= line.retries and request.sampling.temperature > 0:
                expected += line.seconds  # one more try to come
                expect(expected)
                continue
            report = LineReport(seed=state.best_seed, tries=state.made, flags=state.best_flags)
            sink.done(line, state.best, report)
            stats.reports[line.index] = report
            stats.generated.add(line.index)
            stats.seconds += state.best.seconds
            expect(expected)  # every try's audio counts: the progress bar counts their frames
            del tries[line.index]
        del out, result  # the audio is in the cache now; do not hold it while the next call runs
        pending = [line for line in pending if line.index not in stats.generated]
    return stats


def _smaller_batch(error: OutOfMemory, batch_size: int, *, done: int) -> int:
    """Half the batch size after running out of memory; at batch size 1, stop with what is cached said.

    A request's codes do not depend on its batch (engine/decode/rng.py), so a smaller batch changes no audio."""
    if batch_size > 1:
        return max(1, batch_size // 2)
    raise HiggsError(f"{error.message}, even one line at a time; {done} line(s) generated in this render are "
                     "cached, and a render run again goes on from there",
                     hint="lower max_seconds, use a smaller model, or on a GPU bf16 (the default there)") from None
