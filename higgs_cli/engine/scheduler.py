"""An online continuous-batching scheduler over one ModelSession, for a server.

    scheduler = Scheduler(session, slots=32)
    ticket = scheduler.submit(request)      # from any thread; QueueFull past slots + max_queue
    ticket.wait(); ticket.result()          # or read ticket.take() as frames arrive

One thread owns the model and runs the decode loop of `decode.loop.run_jobs`,
but its job list is open: requests are admitted into free slots while other
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

from higgs_cli.engine.decode.loop import CAPACITY_BUCKET, SPAN_STEP, power_of_two, size_bucket
from higgs_cli.engine.decode.sampling import Mode
from higgs_cli.engine.decode.step import device_step, make_step, sync_interval
from higgs_cli.engine.decode.tickets import Cancelled, ModelCall, Ticket
from higgs_cli.engine.request import GenerationRequest, GenerationResult

__all__ = ["Cancelled", "QueueFull", "Scheduler", "Ticket"]

DEFAULT_WINDOW = 7  # RAS window every workspace covers (the default); longer ones choose a new workspace


class QueueFull(Exception):
    """The scheduler holds as many waiting requests as it may: try again later."""


class Scheduler:
    """The decode loop of one session in its own thread, admitting requests as they come."""

    def __init__(self, session, *, slots: int = 32, max_queue: int = 256) -> None:
        self.session = session
        self.slots = max(1, slots)
        self.max_queue = max_queue
        self._direct_lock = threading.Lock()  # calls run in the caller's thread when no loop runs
        self._cond = threading.Condition()
        self._waiting: collections.deque[Ticket] = collections.deque()
        self._reserved = 0  # requests admitted by submit_many whose prompts are being built
        self._calls: collections.deque[ModelCall] = collections.deque()  # for the model's thread
        self._looping = False  # the model's thread is there to run calls
        self._owner: list[Ticket | None] = [None] * self.slots
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.requests_total = 0
        self.frames_total = 0
        self.cancelled_total = 0  # requests stopped before they ended (client gone, shutdown)
        self._recent: collections.deque[tuple[float, int]] = collections.deque()  # (time, frames) for frames/s

    # ------------------------------------------------------------------ callers

    @classmethod
    def open(cls, load: Callable[[], object], *, slots: int = 32, max_queue: int = 256) -> Scheduler:
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
        with self._cond:  # check and reserve in one step, so a burst cannot all pass the check
            if self._stopping:
                raise Cancelled("the server is shutting down")
            waiting = sum(not t.cancelled for t in self._waiting)  # a timed-out one leaves at the next admission
            held = waiting + self._reserved + sum(t is not None for t in self._owner)
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

    def decode_many(self, batch: Sequence[np.ndarray], *, batch_size: int = 8) -> list[np.ndarray]:
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
                    "queue_length": len(self._waiting), "busy_slots": sum(t is not None for t in self._owner),
                    "slots": self.slots, "frames_per_second": made / 10.0}

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._waiting) or any(t is not None for t in self._owner)

    def close(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking requests; with `drain` let the queued and running ones finish, else cancel them."""
        with self._cond:
            self._stopping = True
            if not drain:
                for ticket in [*self._waiting, *self._owner]:
                    if ticket is not None:
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
                        running = [t for t in self._owner if t is not None]
                        self._owner = [None] * self.slots
                        if not running and self._waiting:  # no workspace for the first in line
                            running = [self._waiting.popleft()]
                    for ticket in running:
                        ticket._end(error=error)

    def _workspace(self, head: Sequence[Ticket]):
        """A cache and slot table for the waiting requests (and at least the default RAS window)."""
        session = self.session
        needed = max(len(t.job.prompt.input_ids) + t.job.max_steps for t in head) + 1
        window = max([DEFAULT_WINDOW, *(t.job.sampling.ras_window for t in head)])
        mode = Mode(samples=True, window=window)  # fixed per workspace: greedy rows take the argmax anyway
        compiled = session.compiled_decode is not None or session.graphs
        capacity = max(CAPACITY_BUCKET, size_bucket(needed)) if compiled else \
            -(-needed // CAPACITY_BUCKET) * CAPACITY_BUCKET
        work = session.workspaces.get(session.runner, slots=self.slots, capacity=capacity, max_frames=capacity,
                                      mode=mode, dtype=session.dtype, device=session.device)
        return work, mode

    def _fits(self, ticket: Ticket, work, mode: Mode) -> bool:
        job = ticket.job
        window_ok = job.sampling.ras_window <= mode.window or job.sampling.ras_max_repeat <= 0
        return len(job.prompt.input_ids) + job.max_steps + 1 <= work.cache.capacity and window_ok

    def _serve_until_idle(self) -> None:
        """Run one workspace until no slot is busy and the next waiting request (if any) needs another."""
        session = self.session
        with self._cond:
            head = list(self._waiting)[:self.slots]
        work, mode = self._workspace(head)
        cache, table = work.cache, work.table
        step = make_step(session.runner, work, mode, session.compiled_decode, session.graphs)
        forward = session.compiled_decode or session.runner.decode
        heads: dict[int, tuple] = {}  # (cache, table) views of the busy low slots, by count

        def step_busy(span: int) -> None:
            """One decode step over the lowest power-of-two slots that hold every busy one (free
            slots still cost a row each, and most of the time few are busy); a lone request on a
            compiled CPU session takes the batch-1 AOTInductor step. A CUDA graph replays the
            whole table."""
            if session.graphs:
                return step(span)
            highest = max(slot for slot, ticket in enumerate(self._owner) if ticket is not None)
            n = min(self.slots, power_of_two(highest + 1))
            if n not in heads:
                heads[n] = (cache.head(n), table.head(n))
            device_step(forward, *heads[n], mode, span)
        sync_every = sync_interval(session.device)
        starts = [0] * self.slots
        reported = [0] * self.slots
        device = session.device

        def sync() -> int:
            """Deliver new frames, end finished or cancelled slots; the furthest position + 1."""
            done, steps = table.status()
            made, furthest = 0, 0
            for slot, ticket in enumerate(self._owner):
                if ticket is None:
                    continue
                if steps[slot] > reported[slot]:
                    block = table.frames[slot, reported[slot]:steps[slot]].to("cpu", copy=True).numpy()
                    made += steps[slot] - reported[slot]
                    reported[slot] = steps[slot]
                    ticket._push(block)
                if done[slot] or ticket.cancelled:
                    if not done[slot]:
                        table.done[slot] = True  # a free slot counts as done: the step leaves it alone
                        with self._cond:
                            self.cancelled_total += 1
                    self._owner[slot] = None
                    ticket._end(finished=bool(table.finished[slot]) and done[slot])
                else:
                    furthest = max(furthest, starts[slot] + steps[slot])
            if made:
                with self._cond:
                    self.frames_total += made
                    self._recent.append((time.monotonic(), made))
            return furthest

        def admit() -> bool:
            """Move waiting requests that fit into free slots, prefill them together; False when none."""
            rows, admitted = [], []
            with self._cond:
                free = [slot for slot in range(self.slots) if self._owner[slot] is None]
                while free and self._waiting:
                    ticket = self._waiting[0]
                    if ticket.cancelled:
                        self._waiting.popleft()
                        self.cancelled_total += 1
                        ticket._end()
                        continue
                    if not self._fits(ticket, work, mode):
                        break  # first in line: it waits for a workspace of its own, nothing passes it
                    self._waiting.popleft()
                    slot = free.pop(0)
                    self._owner[slot] = ticket
                    admitted.append((slot, ticket))
            if not admitted:
                return False
            prefixes = session.prefixes
            for slot, ticket in admitted:
                prompt = ticket.job.prompt
                ids = torch.as_tensor(prompt.input_ids, device=device)
                frames = torch.as_tensor(prompt.audio_frames, device=device)
                start = 0
                stored = prefixes.get(prompt.prefix_key) if prompt.prefix_len else None
                if stored is not None:
                    cache.write(slot, stored)
                    start = prompt.prefix_len
                    frames = frames[:0]  # reference audio lives in the prefix
                rows.append((slot, ids, frames, start))
            logits = session.runner.prefill_many(cache, rows)
            for (slot, ticket), (_, _, _, start) in zip(admitted, rows):
                job = ticket.job
                if job.prompt.prefix_len and start == 0:
                    prefixes.put(job.prompt.prefix_key, cache.read(slot, job.prompt.prefix_len))
                table.admit(slot, length=len(job.prompt.input_ids), sampling=job.sampling, seed=job.seed,
                            max_steps=job.max_steps)
                starts[slot], reported[slot] = len(job.prompt.input_ids), 0
            table.choose_and_record(logits, mode, torch.tensor([slot for slot, _ in admitted], device=device))
            return True

        furthest = sync()
        while True:
            self._run_calls()
            while admit():  # a request may end on its first frame
                furthest = sync()
            if all(ticket is None for ticket in self._owner):
                return
            for ahead in range(sync_every):
                span = min(cache.capacity, furthest + ahead)
                if session.compiled_decode is not None and device.type == "cpu":
                    span = min(cache.capacity, -(-span // SPAN_STEP) * SPAN_STEP)
                step_busy(span)
            furthest = sync()
