"""The one long action at a time (a render, takes): run in a thread, watched by the page.

A job calls the library function the CLI command calls, with a `RenderProgress` that records
where it is; the page polls `GET /api/job` and draws it. The project lock is taken by that
function itself, as for the CLI: a render from a terminal and one from the page never interleave,
and the one that comes second is refused with what holds the lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from higgs_cli.engine.request import FRAME_RATE
from higgs_cli.errors import HiggsError, LockedError, UsageError

log = logging.getLogger("higgs.studio")
_ids = itertools.count(1)


class JobProgress:
    """A `RenderProgress` (building/render.py) that keeps the figures for the page."""

    def __init__(self) -> None:
        self.lines = 0  # lines this job generates
        self.done = 0
        self.seconds_expected = 0.0
        self.frames_made = 0
        self.stage_text = "starting"

    def start(self, sections: list[tuple[str, int, int]]) -> None:
        self.lines = sum(total - cached for _, total, cached in sections)
        self.stage_text = "generating" if self.lines else "assembling"

    def expect(self, seconds: float) -> None:
        self.seconds_expected = float(seconds)

    def frames(self, n: int) -> None:
        self.frames_made += int(n)

    def line_done(self, section: str, seconds: float) -> None:
        self.done += 1

    def stage(self, message: str) -> None:
        self.stage_text = message

    def to_dict(self) -> dict:
        return {"lines": self.lines, "done": self.done, "seconds_expected": round(self.seconds_expected, 1),
                "seconds_made": round(self.frames_made / FRAME_RATE, 1), "stage": self.stage_text}


class Jobs:
    """At most one running job; the last one's outcome is kept for the page to read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: dict[str, Any] | None = None
        self._progress: JobProgress | None = None

    def busy(self) -> bool:
        return self.current is not None and self.current["state"] == "running"

    def start(self, kind: str, what: str, work: Callable[[JobProgress], dict]) -> dict:
        """Run `work(progress)` in a thread; UsageError-like refusal when one is running already."""
        with self._lock:
            if self.busy():
                raise LockedError(f"the studio is busy: {self.current['kind']} {self.current['what']} is running",
                                  hint="wait for it to finish")
            progress = JobProgress()
            job = {"id": next(_ids), "kind": kind, "what": what, "state": "running", "started": time.time(),
                   "error": None, "hint": None, "result": None}
            self.current, self._progress = job, progress
        threading.Thread(target=self._run, args=(job, progress, work), name=f"studio-{kind}", daemon=True).start()
        return self.view()

    def _run(self, job: dict, progress: JobProgress, work: Callable[[JobProgress], dict]) -> None:
        try:
            result = work(progress)
            job.update(state="done", result=result)
        except HiggsError as error:
            job.update(state="failed", error=error.message, hint=error.hint,
                       status=409 if isinstance(error, LockedError) else (400 if isinstance(error, UsageError)
                                                                         else 500))
        except Exception as error:  # never a traceback to the page; the log has it
            log.exception("studio job %s failed", job["kind"])
            job.update(state="failed", error=f"{type(error).__name__}: {error}", hint=None, status=500)
        finally:
            job["finished"] = time.time()

    def view(self) -> dict | None:
        """The current (or last) job as the page sees it."""
        job = self.current
        if job is None:
            return None
        shown = {k: v for k, v in job.items() if k != "result"}
        shown["progress"] = self._progress.to_dict() if self._progress is not None else None
        result = job.get("result")
        if isinstance(result, dict):  # only what the page uses: the full summary has paths and figures
            shown["result"] = {k: result[k] for k in ("lines", "generated", "cached", "duration", "made", "ref",
                                                      "snapshot", "missing", "flagged") if k in result}
        return shown
