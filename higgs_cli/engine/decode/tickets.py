"""What the scheduler hands its callers: a `Ticket` per request, and `ModelCall`, a piece of work
(the codec, prompt building, loading) that runs on the model's thread between decode steps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from higgs_cli.engine.decode.loop import Job
from higgs_cli.engine.model.delay import generated_codes
from higgs_cli.engine.request import GenerationRequest


class Cancelled(Exception):
    """The ticket was cancelled (its client went away, or the server is stopping)."""


class Ticket:
    """One request in the scheduler. Frames arrive as they are generated; then it ends."""

    def __init__(self, job: Job, request: GenerationRequest) -> None:
        self.job = job
        self.request = request
        self._cond = threading.Condition()
        self._frames: list[np.ndarray] = []  # (n, K) delayed-frame blocks, in order
        self._taken = 0
        self.done = False
        self.finished = False  # the model ended the stream (False: the length limit cut it)
        self.error: BaseException | None = None
        self.cancelled = False
        self.listener: Callable[[], None] | None = None  # called (scheduler thread) on news
        self.submitted = time.monotonic()

    # --- the scheduler's side
    def _push(self, frames: np.ndarray) -> None:
        with self._cond:
            self._frames.append(frames)
            self._cond.notify_all()
        self._tell()

    def _end(self, *, finished: bool = False, error: BaseException | None = None) -> None:
        with self._cond:
            if self.done:
                return
            self.done, self.finished, self.error = True, finished, error
            self._cond.notify_all()
        self._tell()

    def _tell(self) -> None:
        if self.listener is not None:
            self.listener()

    # --- the caller's side
    def cancel(self) -> None:
        """Stop generating this request; its slot is freed at the next sync."""
        self.cancelled = True

    def take(self) -> tuple[list[np.ndarray], bool]:
        """The frame blocks that arrived since the last take, and whether the ticket has ended."""
        with self._cond:
            new = self._frames[self._taken:]
            self._taken = len(self._frames)
            return new, self.done

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the ticket ends (True) or `timeout` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.done, timeout)

    def frames(self) -> np.ndarray:
        """Every delayed frame (N, K) so far."""
        with self._cond:
            blocks = list(self._frames)
        return np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.int64)

    def codes(self) -> np.ndarray:
        """The finished request's codes (codebooks x frames, delay reverted); raises its error."""
        if self.error is not None:
            raise self.error
        if self.cancelled and not self.finished and not self.done:
            raise Cancelled()
        return generated_codes(self.frames())


class ModelCall:
    """`fn(*args)`, queued for the model's thread; the caller waits for `result()`."""

    def __init__(self, fn: Callable, args: tuple) -> None:
        self.fn, self.args = fn, args
        self._done = threading.Event()
        self._value = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._value = self.fn(*self.args)
        except BaseException as error:  # handed to the caller, whatever it is
            self._error = error
        finally:
            self._done.set()

    def result(self):
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value
