"""The generation loop of a render: what the cache lacks goes to the model in dependency waves.

`render.py` decides which lines are missing and how each request is built (a
line hears the audio of its `context_from` lines, as rendered); this module
sends them to the session in batches, reports progress, and hands every
finished line to `on_done`, which caches it at once, so an interrupted render
resumes where it stopped. The quality guards (guards.py) check each result
here, and a flagged line is generated again with another seed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from higgs_cli.engine.request import GenerationRequest, GenerationResult
from higgs_cli.errors import HiggsError, OutOfMemory
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.guards import LineChecker, rank

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


def generate_missing(session, pending: Sequence[int], *, depends: Sequence[tuple[int, ...]],
                     is_done: Callable[[int], bool], build_request: Callable[[int], GenerationRequest],
                     on_done: Callable[[int, GenerationResult, LineReport], None],
                     estimate_seconds: Callable[[int], float], batch_size: int, progress,
                     retries_for: Callable[[int], int] = lambda i: 0, guards: GuardSettings | None = None,
                     line_for: Callable[[int], PlannedLine] | None = None, root: Path | None = None,
                     checker: LineChecker | None = None, device: str | None = None) -> GenerationStats:
    """Generate every line in `pending` (indexes into the render's planned lines).

    A line is sent once every line in `depends[i]` is done (`is_done`); `build_request(i)`
    makes its request then (with the audio it hears); `on_done(i, result, report)` receives
    each kept result; `estimate_seconds(i)` guesses its length from the text, for progress.
    `progress` is a RenderProgress. `retries_for(i)` is how many more tries a flagged line gets;
    `guards` the project's guard settings (None: the defaults); `line_for(i)` the planned line
    (what the `check_line` hook sees); `root` the project folder (a relative guards.asr_model);
    `checker` replaces the checks built from `guards` (tests); `device` is the user's --device, if
    any: speech recognition runs on the session's device, or there when the model is a server's.

    Each result is checked (guards.py); a flagged line with retries left goes to the next call
    again, first in line, with `retry_seed(seed, try)`; when it is clean or out of retries, its
    best try goes to `on_done`, once.
    """
    stats = GenerationStats()
    pending = list(pending)
    tries: dict[int, _Tries] = {}
    # The audio still to come, so a display can show seconds made of seconds expected (and an
    # ETA) before a whole line is done. Progress objects from before expect() still work.
    expect = getattr(progress, "expect", None) or (lambda seconds: None)
    estimate = {i: estimate_seconds(i) for i in pending}
    expected = sum(estimate.values())
    expect(expected)
    if pending:  # (all cached: the guards' settings, an ASR folder, are not even looked at)
        checker = checker or LineChecker(guards, root=root, session=session, device=device)
    while pending:
        ready = [i for i in pending if all(is_done(j) for j in depends[i])]
        if not ready:  # plan_sections only allows earlier context lines, so this is a bug
            raise HiggsError("render stalled: lines wait on context that is never generated")
        ready.sort(key=lambda i: i not in tries)  # retries first: a line's tries do not wait behind new lines
        batch = ready[:batch_size * CALL_BATCHES]
        requests = []
        for i in batch:
            request = build_request(i)
            made = tries[i].made if i in tries else 0
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
        for i, request, result in zip(batch, requests, out, strict=True):
            state = tries.setdefault(i, _Tries())
            flags = checker.check(request, result, line_for(i) if line_for else None)
            key = rank(flags, state.made)
            state.made += 1
            if state.best is None or key < state.best_rank:
                state.best, state.best_seed, state.best_flags, state.best_rank = result, request.seed, flags, key
            stats.tried_seconds += result.seconds
            expected += result.seconds - estimate[i]
            # Greedy decoding (temperature 0) ignores the seed: another try would give the same codes.
            if flags and checker.enabled and state.made <= retries_for(i) and request.sampling.temperature > 0:
                expected += estimate[i]  # one more try to come
                expect(expected)
                continue
            report = LineReport(seed=state.best_seed, tries=state.made, flags=state.best_flags)
            on_done(i, state.best, report)
            stats.reports[i] = report
            stats.generated.add(i)
            stats.seconds += state.best.seconds
            expect(expected)  # every try's audio counts: the progress bar counts their frames
            del tries[i]
        del out, result  # the audio is in the cache now; do not hold it while the next call runs
        pending = [i for i in pending if i not in stats.generated]
    return stats


def _smaller_batch(error: OutOfMemory, batch_size: int, *, done: int) -> int:
    """Half the batch size after running out of memory; at batch size 1, stop with what is cached said.

    A request's codes do not depend on its batch (engine/decode/rng.py), so a smaller batch changes no audio."""
    if batch_size > 1:
        return max(1, batch_size // 2)
    raise HiggsError(f"{error.message}, even one line at a time; {done} line(s) generated in this render are "
                     "cached, and a render run again goes on from there",
                     hint="lower max_seconds, use a smaller model, or on a GPU bf16 (the default there)") from None
