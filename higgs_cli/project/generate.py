"""The generation loop of a render: what the cache lacks goes to the model in dependency waves.

`render.py` decides which lines are missing and how each request is built (a
line hears the audio of its `context_from` lines, as rendered); this module
sends them to the session in batches, reports progress, and hands every
finished line to `on_done`, which caches it at once, so an interrupted render
resumes where it stopped. The quality guards (guards.py) check each result
here, and a flagged line is generated again with another seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from higgs_cli.engine.request import GenerationRequest, GenerationResult
from higgs_cli.errors import HiggsError
from higgs_cli.plugins.script import GuardSettings

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


def generate_missing(session, pending: Sequence[int], *, depends: Sequence[tuple[int, ...]],
                     is_done: Callable[[int], bool], build_request: Callable[[int], GenerationRequest],
                     on_done: Callable[[int, GenerationResult, LineReport], None],
                     estimate_seconds: Callable[[int], float], batch_size: int, progress,
                     retries_for: Callable[[int], int] = lambda i: 0, guards: GuardSettings | None = None
                     ) -> GenerationStats:
    """Generate every line in `pending` (indexes into the render's planned lines).

    A line is sent once every line in `depends[i]` is done (`is_done`); `build_request(i)`
    makes its request then (with the audio it hears); `on_done(i, result, report)` receives
    each kept result; `estimate_seconds(i)` guesses its length from the text, for progress.
    `progress` is a RenderProgress. `retries_for(i)` is how many more tries a flagged line gets;
    `guards` the project's guard settings (None: the defaults).
    """
    stats = GenerationStats()
    pending = list(pending)
    # The audio still to come, so a display can show seconds made of seconds expected (and an
    # ETA) before a whole line is done. Progress objects from before expect() still work.
    expect = getattr(progress, "expect", None) or (lambda seconds: None)
    estimate = {i: estimate_seconds(i) for i in pending}
    expected = sum(estimate.values())
    expect(expected)
    while pending:
        ready = [i for i in pending if all(is_done(j) for j in depends[i])]
        if not ready:  # plan_sections only allows earlier context lines, so this is a bug
            raise HiggsError("render stalled: lines wait on context that is never generated")
        batch = ready[:batch_size * CALL_BATCHES]
        requests = [build_request(i) for i in batch]
        started = time.perf_counter()
        out = session.generate(requests, batch_size=batch_size, progress=progress.frames)
        stats.spent += time.perf_counter() - started
        if len(out) != len(batch):
            raise HiggsError(f"the model returned {len(out)} results for {len(batch)} requests")
        for i, request, result in zip(batch, requests, out, strict=True):
            report = LineReport(seed=request.seed)
            on_done(i, result, report)
            stats.reports[i] = report
            stats.generated.add(i)
            expected += result.seconds - estimate[i]
            expect(expected)
            stats.seconds += result.seconds
        del out, result  # the audio is in the cache now; do not hold it while the next call runs
        pending = [i for i in pending if i not in stats.generated]
    return stats
