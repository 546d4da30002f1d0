"""Work on a few threads with results in order, and nothing left running when the caller stops.

numpy, scipy's filters and libsndfile release the GIL on large arrays, so per-line audio work
(filtering, trimming, writing a stem) runs on several cores from threads. Every helper here joins
its threads before it returns or raises (Ctrl-C included): no thread writes into a folder after
the caller has removed it or released its lock.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4  # the per-line work is short; more threads only add memory in flight


def default_workers() -> int:
    """Threads for per-line work: the cores this process may use, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None,
                ahead: int | None = None) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads, yielding in the order of `items`, at most `ahead` results
    computed before they are taken (memory stays bounded). With one worker it runs inline.

    When the consumer stops early or an error is raised (in `fn` or in the consumer), the calls not
    yet started are cancelled and the running ones finish before the generator is left.
    """
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1:
        for item in items:
            yield fn(item)
        return
    ahead = max(workers, ahead or 2 * workers)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="higgs-work")
    waiting: deque[Future] = deque()
    try:
        for item in items:
            waiting.append(pool.submit(fn, item))
            if len(waiting) >= ahead:
                yield waiting.popleft().result()
        while waiting:
            yield waiting.popleft().result()
    finally:
        for future in waiting:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
