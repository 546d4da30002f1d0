"""An online continuous-batching scheduler over one ModelSession, for a server.

    scheduler = Scheduler(session, slots=32)
    ticket = scheduler.submit(request)      # from any thread; QueueFull past slots + max_queue
    ticket.wait(); ticket.result()          # or read ticket.take() as frames arrive

One thread owns the model and runs the engine's one decode loop
(`decode.loop.decode_jobs`, the loop `ModelSession.generate` runs over a closed
list) with an open job source: requests are admitted into free slots while other
requests decode, so concurrent requests share every decode step. A request's
codes depend only on the request and its seed (the counter-based sampler and
a batch-invariant forward), so its audio is the same alone or beside others.
A cancelled ticket (its client went away) frees its slot at the next sync.

All torch work of a server runs on that one thread: loading (`Scheduler.open`),
the codec and prompt building (`call`, between decode steps). On a CPU each
thread that runs torch keeps its own OpenMP team, and once the process has
more OpenMP threads than cores, libgomp's workers stop spinning between
parallel regions and sleep: every region then pays a wake-up, and a compiled
batch-1 step, about a hundred regions, ran 1.5-1.9x slower (measured here).

The workspace (KV cache, slot table) is chosen when the loop is idle, large
enough for the requests waiting then; a request that needs more room or a
longer RAS window than the running workspace waits, first in line, until the
running requests finish (nothing jumps the queue past it).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from higgs_cli.engine.api import CODEC_BATCH_SIZE, DEFAULT_BATCH_SIZE
from higgs_cli.engine.decode.loop import CAPACITY_BUCKET, Job, JobSource, decode_jobs, size_bucket
from higgs_cli.engine.decode.sampling import Mode
from higgs_cli.engine.decode.tickets import Cancelled, ModelCall, Ticket
from higgs_cli.engine.request import GenerationRequest, GenerationResult
from higgs_cli.errors import UsageError

__all__ = ["Cancelled", "QueueFull", "Scheduler", "Ticket"]

DEFAULT_WINDOW = 7  # RAS window every workspace covers (the default); longer ones choose a new workspace


class QueueFull(Exception):
    """The scheduler holds as many waiting requests as it may: try again later."""


class Scheduler:
    """The decode loop of one session in its own thread, admitting requests as they come."""

    def __init__(self, session, *, slots: int = DEFAULT_BATCH_SIZE, max_queue: int = 256) -> None:
        self.session = session
        self.slots = max(1, slots)
        self.max_queue = max_queue
        self._direct_lock = threading.Lock()  # calls run in the caller's thread when no loop runs
        self._cond = threading.Condition()
        self._waiting: collections.deque[Ticket] = collections.deque()
        self._reserved = 0  # requests admitted by submit_many whose prompts are being built
        self._calls: collections.deque[ModelCall] = collections.deque()  # for the model's thread
        self._looping = False  # the model's thread is there to run calls
        self._running: list[Ticket] = []  # the tickets in slots
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.requests_total = 0
        self.frames_total = 0
        self.cancelled_total = 0  # requests stopped before they ended (client gone, shutdown)
        self._recent: collections.deque[tuple[float, int]] = collections.deque()  # (time, frames) for frames/s

    # ------------------------------------------------------------------ callers

    @classmethod
    def open(cls, load: Callable[[], object], *, slots: int = DEFAULT_BATCH_SIZE, max_queue: int = 256) -> Scheduler:
        """Start the model's thread and load the session on it (`load()`), so that one thread does
        all of its torch work; `load`'s error is raised here, and the thread stopped."""
        scheduler = cls(None, slots=slots, max_queue=max_queue).start()
        try:
            scheduler.session = scheduler.call(load)
        except BaseException:
            scheduler.close(drain=False, timeout=1)  # after Ctrl-C the load may still run: not waited for
            raise
        return scheduler

    def start(self) -> Scheduler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="higgs-scheduler", daemon=True)
            with self._cond:
                self._looping = True
            self._thread.start()
        return self

    def submit(self, request: GenerationRequest) -> Ticket:
        """Queue one request (its prompt is built here, in the caller's thread)."""
        [ticket] = self.submit_many([request])
        return ticket

    def submit_many(self, requests: Sequence[GenerationRequest]) -> list[Ticket]:
        """Queue several requests at once, or none of them (QueueFull) when they do not all fit."""
        if any(request.adapter is not None for request in requests):
            # the shared decode loop runs one set of weights for every slot: a voice's adapter is
            # applied only by ModelSession.generate (grouped by adapter), not here yet
            raise UsageError("this server cannot speak a voice with its trained adapter yet",
                             hint="generate without the server (--no-server), or use the voice without its adapter")
        with self._cond:  # check and reserve in one step, so a burst cannot all pass the check
            if self._stopping:
                raise Cancelled("the server is shutting down")
            waiting = sum(not t.cancelled for t in self._waiting)  # a timed-out one leaves at the next admission
            held = waiting + self._reserved + len(self._running)
            if held + len(requests) > self.max_queue + self.slots:
                raise QueueFull(f"{max(0, held - self.slots)} requests are waiting (at most {self.max_queue})")
            self._reserved += len(requests)
        try:
            jobs = self.call(self.session._jobs, requests)  # checks the text; encodes reference audio once each
            tickets = [Ticket(job, request) for job, request in zip(jobs, requests)]
        except BaseException:
            with self._cond:
                self._reserved -= len(requests)
            raise
        with self._cond:
            self._reserved -= len(requests)
            if self._stopping:
                raise Cancelled("the server is shutting down")
            self._waiting.extend(tickets)
            self.requests_total += len(tickets)
            self._cond.notify_all()
        return tickets

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate and decode requests through the scheduler, beside whatever else runs."""
        tickets = self.submit_many(requests)
        results = []
        for ticket in tickets:
            ticket.wait()
            codes = ticket.codes()
            results.append(GenerationResult(codes=codes, audio=self.decode(codes), finished=ticket.finished))
        return results

    def call(self, fn: Callable, *args):
        """`fn(*args)` on the model's thread, before its next step (here when no loop runs)."""
        with self._cond:
            queued = self._looping and threading.current_thread() is not self._thread
            if queued:
                call = ModelCall(fn, args)
                self._calls.append(call)
                self._cond.notify_all()
        if queued:
            return call.result()
        with self._direct_lock:
            return fn(*args)

    def _run_calls(self) -> None:
        while True:
            with self._cond:
                if not self._calls:
                    return
                call = self._calls.popleft()
            call.run()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes -> audio as `ModelSession.generate` decodes one line (same samples)."""
        return self.call(lambda: self.session.decode_many([codes])[0])

    def decode_many(self, batch: Sequence[np.ndarray], *, batch_size: int = CODEC_BATCH_SIZE) -> list[np.ndarray]:
        """Decode as `ModelSession.generate` decodes one call's lines (equal lengths together): a
        batched decode differs from a lone one by about 1e-5, so a client that wants the very samples
        of an in-process `generate` call asks for its lines together."""
        return self.call(lambda: self.session.decode_many(list(batch), batch_size=batch_size))

    def encode(self, audio: np.ndarray) -> np.ndarray:
        return self.call(self.session.encode_audio, audio)

    def stats(self) -> dict:
        """Requests so far, the queue, busy slots and recent frames per second (the last 10 s)."""
        now = time.monotonic()
        with self._cond:
            while self._recent and self._recent[0][0] < now - 10:
                self._recent.popleft()
            made = sum(n for _, n in self._recent)
            return {"requests_total": self.requests_total, "frames_total": self.frames_total,
                    "cancelled_total": self.cancelled_total,
                    "queue_length": len(self._waiting), "busy_slots": len(self._running),
                    "slots": self.slots, "frames_per_second": made / 10.0}

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._waiting or self._running)

    def close(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; with `drain` let the queued and running ones finish, else cancel them."""
        with self._cond:
            self._stopping = True
            if not drain:
                for ticket in [*self._waiting, *self._running]:
                    ticket.cancel()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ the model's thread

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._cond:
                self._looping = False  # later calls run in their callers' threads
            self._run_calls()  # any queued before that

    def _loop(self) -> None:
        with torch.no_grad():
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping or self._waiting or self._calls)
                    if not self._waiting and not self._calls:
                        return  # stopping, nothing left
                self._run_calls()
                if not self._waiting:
                    continue
                try:
                    self._serve_until_idle()
                except BaseException as error:  # a failed step fails what ran; the loop goes on
                    with self._cond:
                        running, self._running = self._running, []
                        if not running and self._waiting:  # no workspace for the first in line
                            running = [self._waiting.popleft()]
                    for ticket in running:
                        ticket._end(error=error)

    def _workspace(self, head: Sequence[Job]):
        """A cache and slot table for the waiting requests (and at least the default RAS window)."""
        session = self.session
        needed = max(len(job.prompt.input_ids) + job.max_steps for job in head) + 1
        window = max([DEFAULT_WINDOW, *(job.sampling.ras_window for job in head)])
        mode = Mode(samples=True, window=window)  # fixed per workspace: greedy rows take the argmax anyway
        compiled = session.compiled_decode is not None or session.graphs
        capacity = max(CAPACITY_BUCKET, size_bucket(needed)) if compiled else \
            -(-needed // CAPACITY_BUCKET) * CAPACITY_BUCKET
        work = session.workspaces.get(session.runner, slots=self.slots, capacity=capacity, max_frames=capacity,
                                      mode=mode, dtype=session.dtype, device=session.device)
        return work, mode

    def _serve_until_idle(self) -> None:
        """Run one workspace until no slot is busy and the next waiting request (if any) needs another."""
        session = self.session
        with self._cond:
            head = [ticket.job for ticket in list(self._waiting)[:self.slots]]
        work, mode = self._workspace(head)
        decode_jobs(session.runner, work, mode, _Queue(self), device=session.device, prefixes=session.prefixes,
                    compiled_decode=session.compiled_decode, graphs=session.graphs)


class _Queue(JobSource):
    """The scheduler's waiting tickets as the decode loop's open job source (on the model's thread)."""

    streams = True  # a client reads its frames as they are made

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def upcoming(self, count: int) -> list[Job]:
        with self.scheduler._cond:
            return [ticket.job for ticket in list(self.scheduler._waiting)[:count] if not ticket.cancelled]

    def take(self, count: int, fits: Callable[[Job], bool]) -> list[tuple[object, Job]]:
        s = self.scheduler
        taken: list[tuple[object, Job]] = []
        with s._cond:
            while len(taken) < count and s._waiting:
                ticket = s._waiting[0]
                if ticket.cancelled:
                    s._waiting.popleft()
                    s.cancelled_total += 1
                    ticket._end()
                    continue
                if not fits(ticket.job):
                    break  # first in line: it waits for a workspace of its own, nothing passes it
                s._waiting.popleft()
                s._running.append(ticket)
                taken.append((ticket, ticket.job))
        return taken

    def cancelled(self, handle) -> bool:
        return handle.cancelled

    def frames(self, handle, block: np.ndarray) -> None:
        handle._push(block)

    def end(self, handle, *, finished: bool, cancelled: bool) -> None:
        s = self.scheduler
        with s._cond:
            s._running.remove(handle)
            s.cancelled_total += cancelled
        handle._end(finished=finished)

    def made(self, count: int) -> None:
        s = self.scheduler
        with s._cond:
            s.frames_total += count
            s._recent.append((time.monotonic(), count))

    def between(self) -> None:
        self.scheduler._run_calls()
