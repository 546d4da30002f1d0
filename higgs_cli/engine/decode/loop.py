"""Continuous batching: one decode loop over a fixed set of slots and one static KV cache.

Waiting jobs take free slots (prefill), every busy slot advances one frame per
decode step, and a finished job frees its slot for the next one, so a long line
never holds up the batch. A prompt's system/scene/reference part is prefilled
once and its keys and values copied into every slot that shares it.

The loop takes its jobs from a `JobSource`: `ModelSession.generate` hands it a
closed list (`JobList`, through `run_jobs`), the server's scheduler an open
queue that grows while the loop runs. Both get the same admission, prefix
sharing, host syncs and steps.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from higgs_cli.engine.decode.sampling import Mode
from higgs_cli.engine.decode.slots import mode_for
from higgs_cli.engine.decode.step import Forward, Workspace, Workspaces, device_step, make_step, sync_interval
from higgs_cli.engine.model.forward import Runner
from higgs_cli.engine.model.prompt import Prompt
from higgs_cli.engine.request import Sampling

CAPACITY_BUCKET = 256
SPAN_STEP = 32


def power_of_two(n: int) -> int:
    """The smallest power of two >= n."""
    return 1 << max(0, n - 1).bit_length()


def size_bucket(n: int) -> int:
    """The smallest of 2^k and 1.5 * 2^k that is >= n: few sizes, at most half of one unused."""
    top = power_of_two(n)
    return top * 3 // 4 if top >= 4 and top * 3 // 4 >= n else top


@dataclass
class Job:
    prompt: Prompt
    sampling: Sampling
    seed: int
    max_steps: int


class PrefixStore:
    """Keys/values of shared prompt prefixes, least recently used dropped first."""

    def __init__(self, max_entries: int = 32) -> None:
        self.entries: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.max_entries = max_entries
        self.hits = 0

    def get(self, key: bytes, *, count: bool = True):
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
            self.hits += count
        return found

    def put(self, key: bytes, value) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


class JobSource:
    """Where the loop's jobs come from and where their frames go; the loop calls it on its own thread.

    A job is admitted under a handle the source chooses (`take`); the loop then
    hands back the handle's frames (`frames`: as they are made when `streams`,
    else all at once at its end) and its end (`end`)."""

    streams = False  # frames at every host sync (else once, when the job ends)

    def upcoming(self, count: int) -> list[Job]:
        """The next `count` jobs in line, not taken (their shared prefixes are prefilled ahead)."""
        raise NotImplementedError

    def take(self, count: int, fits: Callable[[Job], bool]) -> list[tuple[object, Job]]:
        """Up to `count` jobs to admit now, in line order, each with its handle; none past one that
        does not `fit` the workspace (it waits for one of its own)."""
        raise NotImplementedError

    def cancelled(self, handle) -> bool:
        """Whether to stop a running job (its slot is freed at the next sync)."""
        return False

    def frames(self, handle, block: np.ndarray) -> None:
        """New delayed frames (n, K) of a running job."""

    def end(self, handle, *, finished: bool, cancelled: bool) -> None:
        """A job left its slot: the model ended it (`finished`), its length limit did, or it was cancelled."""

    def made(self, count: int) -> None:
        """`count` frames were made since the last host sync, over every slot."""

    def between(self) -> None:
        """Host work to run between syncs, before admitting (the scheduler's queued calls)."""


class JobList(JobSource):
    """A closed list of jobs; each job's frames (N, K) and whether the model ended it, in `results`."""

    def __init__(self, jobs: Sequence[Job], *, on_frames: Callable[[int], None] | None = None,
                 on_frame: Callable[[int, np.ndarray], None] | None = None) -> None:
        self.jobs = list(jobs)
        self.next = 0
        self.blocks: list[list[np.ndarray]] = [[] for _ in self.jobs]
        self.results: list[tuple[np.ndarray, bool] | None] = [None] * len(self.jobs)
        self.on_frames, self.on_frame = on_frames, on_frame
        self.streams = on_frame is not None

    def upcoming(self, count: int) -> list[Job]:
        return self.jobs[self.next:self.next + count]

    def take(self, count: int, fits: Callable[[Job], bool]) -> list[tuple[object, Job]]:
        taken = list(itertools.takewhile(fits, self.upcoming(count)))
        start, self.next = self.next, self.next + len(taken)
        return list(enumerate(taken, start))

    def frames(self, handle, block: np.ndarray) -> None:
        self.blocks[handle].append(block)
        if self.on_frame is not None:
            for frame in block:
                self.on_frame(handle, frame)

    def end(self, handle, *, finished: bool, cancelled: bool) -> None:
        blocks = self.blocks[handle]  # one block unless streamed; every admitted job has a frame
        self.results[handle] = (blocks[0] if len(blocks) == 1 else np.concatenate(blocks), finished)
        self.blocks[handle] = []

    def made(self, count: int) -> None:
        if self.on_frames is not None:
            self.on_frames(count)


def fits(job: Job, work: Workspace, mode: Mode) -> bool:
    """Whether a job can run in this workspace: room in the cache, and a long enough RAS window."""
    window_ok = job.sampling.ras_window <= mode.window or job.sampling.ras_max_repeat <= 0
    needed = len(job.prompt.input_ids) + job.max_steps + 1
    return needed <= work.cache.capacity and job.max_steps <= work.table.frames.shape[1] - 1 and window_ok


def decode_jobs(runner: Runner, work: Workspace, mode: Mode, source: JobSource, *, device: torch.device,
                prefixes: PrefixStore | None = None, compiled_decode: Forward | None = None, graphs: bool = False,
                sync_every: int | None = None) -> None:
    """Decode the source's jobs in this workspace until no slot is busy and none waiting fits.

    The decode loop runs on the device: every step chooses and records the next
    frame of every busy slot there (`SlotTable`), and the host reads which slots
    are done only every `sync_every` steps (default: 8 on CUDA, 1 on CPU), to
    hand over their frames, free finished or cancelled slots and admit waiting
    jobs into the lowest free slots. A step runs over the lowest power-of-two
    slots holding every busy one (free slots still cost a row each); with
    `graphs` (CUDA) the whole step is a captured CUDA graph over every slot,
    attending over the whole cache; `compiled_decode(cache, lengths, frames,
    span)` replaces the eager forward, on CPU (dynamic shapes) attending as far
    as the longest row in steps of SPAN_STEP. `prefixes` (when given) keeps the
    keys and values of prompt prefixes: a prefix several of the next jobs share
    is prefilled once, ahead of them.
    """
    cache, table = work.cache, work.table
    slots = len(table.ids)
    captured = make_step(runner, work, mode, compiled_decode, True) if graphs else None
    forward = compiled_decode if compiled_decode is not None else runner.decode
    heads: dict[int, tuple] = {}  # (cache, table) views of the low slots, by count
    sync_every = sync_interval(device) if sync_every is None else max(1, sync_every)
    owner: list[object | None] = [None] * slots  # each busy slot's handle
    starts = [0] * slots  # each busy slot's prompt length
    reported = [0] * slots  # frames of each slot already handed over

    def job_fits(job: Job) -> bool:
        return fits(job, work, mode)

    def step(span: int) -> None:
        if captured is not None:
            return captured(span)
        highest = max(slot for slot in range(slots) if owner[slot] is not None)
        n = min(slots, power_of_two(highest + 1))
        if n not in heads:
            heads[n] = (cache.head(n), table.head(n))
        device_step(forward, *heads[n], mode, span)

    def sync() -> int:
        """Hand over new frames, end finished or cancelled slots; the furthest position + 1."""
        done, steps = table.status()
        made, furthest = 0, 0
        for slot, handle in enumerate(owner):
            if handle is None:
                continue
            made += steps[slot] - reported[slot]
            cancelled = not done[slot] and source.cancelled(handle)
            if source.streams and steps[slot] > reported[slot]:
                source.frames(handle, table.frames[slot, reported[slot]:steps[slot]].to("cpu", copy=True).numpy())
            reported[slot] = steps[slot]
            if done[slot] or cancelled:
                if cancelled:
                    table.done[slot] = True  # a free slot counts as done: the step leaves it alone
                elif not source.streams:
                    source.frames(handle, table.read(slot, steps[slot])[0].numpy())
                owner[slot] = None
                source.end(handle, finished=bool(done[slot] and table.finished[slot]), cancelled=cancelled)
            else:
                furthest = max(furthest, starts[slot] + steps[slot])
        if made:
            source.made(made)
        return furthest

    def share_prefixes(free: list[int]) -> None:
        """Prefill, once each, the missing prefixes that several of the next jobs share."""
        upcoming = list(itertools.takewhile(job_fits, source.upcoming(len(free))))
        counts: dict[bytes, int] = {}
        for job in upcoming:
            if job.prompt.prefix_len:
                counts[job.prompt.prefix_key] = counts.get(job.prompt.prefix_key, 0) + 1
        missing = {key for key, n in counts.items() if n > 1 and prefixes.get(key, count=False) is None}
        for slot, job in zip(free, upcoming):
            prompt = job.prompt
            if prompt.prefix_key in missing:
                missing.discard(prompt.prefix_key)
                ids = torch.as_tensor(prompt.input_ids[:prompt.prefix_len], device=device)
                runner.prefill_many(cache, [(slot, ids, torch.as_tensor(prompt.audio_frames, device=device), 0)])
                prefixes.put(prompt.prefix_key, cache.read(slot, prompt.prefix_len))

    def admit() -> bool:
        """Give free slots the next jobs that fit, prefill them together and choose their first
        frames; False when none was admitted."""
        free = [slot for slot in range(slots) if owner[slot] is None]
        if not free:
            return False
        if prefixes is not None:
            share_prefixes(free)
        taken = source.take(len(free), job_fits)
        if not taken:
            return False
        rows = []
        for slot, (handle, job) in zip(free, taken):
            owner[slot] = handle  # before the prefill: a failing one fails the jobs it held
            prompt = job.prompt
            ids = torch.as_tensor(prompt.input_ids, device=device)
            frames = torch.as_tensor(prompt.audio_frames, device=device)
            start = 0
            stored = prefixes.get(prompt.prefix_key) if prefixes is not None and prompt.prefix_len else None
            if stored is not None:
                cache.write(slot, stored)
                start = prompt.prefix_len
                frames = frames[:0]  # reference audio lives in the prefix
            rows.append((slot, ids, frames, start))
        logits = runner.prefill_many(cache, rows)
        for (slot, _, _, start), (_, job) in zip(rows, taken):
            prompt = job.prompt
            if prefixes is not None and prompt.prefix_len and start == 0:
                prefixes.put(prompt.prefix_key, cache.read(slot, prompt.prefix_len))
            table.admit(slot, length=len(prompt.input_ids), sampling=job.sampling, seed=job.seed,
                        max_steps=job.max_steps)
            starts[slot], reported[slot] = len(prompt.input_ids), 0
        table.choose_and_record(logits, mode, torch.tensor([row[0] for row in rows], device=device))
        return True

    with torch.no_grad():
        furthest = sync()
        while True:
            source.between()
            while admit():  # a job may end on its first frame
                furthest = sync()
            if all(handle is None for handle in owner):
                return
            for ahead in range(sync_every):
                span = min(cache.capacity, furthest + ahead)
                if compiled_decode is not None and device.type == "cpu":  # dynamic shapes: as far as needed
                    span = min(cache.capacity, -(-span // SPAN_STEP) * SPAN_STEP)
                step(span)
            furthest = sync()


def run_jobs(runner: Runner, jobs: Sequence[Job], *, slots: int, device: torch.device, dtype: torch.dtype,
             prefixes: PrefixStore | None = None,
             on_frames: Callable[[int], None] | None = None,
             on_frame: Callable[[int, np.ndarray], None] | None = None,
             compiled_decode: Forward | None = None, graphs: bool = False,
             workspaces: Workspaces | None = None, sync_every: int | None = None) -> list[tuple[np.ndarray, bool]]:
    """Generate a closed list of jobs; returns each job's delayed frames (N, K) and whether the model ended it.

    The workspace is sized for the whole list (on a compiled session in coarse
    sizes: a graph per shape), then `decode_jobs` runs it. `on_frames(n)` is
    told how many frames were made since its last call (at each host sync);
    `on_frame(job_index, frame)` sees every frame of every job as it is made.
    """
    if not jobs:
        return []
    needed = max(len(job.prompt.input_ids) + job.max_steps for job in jobs) + 1
    if compiled_decode is None and not graphs:
        slots = max(1, min(slots, len(jobs)))
        capacity = -(-needed // CAPACITY_BUCKET) * CAPACITY_BUCKET
        max_frames = max(job.max_steps for job in jobs)
    else:  # a graph per shape: coarse sizes keep them few
        slots = max(1, min(slots, power_of_two(len(jobs))))
        capacity = max(CAPACITY_BUCKET, size_bucket(needed))
        max_frames = size_bucket(max(job.max_steps for job in jobs))
    mode = mode_for([job.sampling for job in jobs])
    work = (workspaces or Workspaces(keep=1)).get(runner, slots=slots, capacity=capacity, max_frames=max_frames,
                                                  mode=mode, dtype=dtype, device=device)
    source = JobList(jobs, on_frames=on_frames, on_frame=on_frame)
    decode_jobs(runner, work, mode, source, device=device, prefixes=prefixes, compiled_decode=compiled_decode,
                graphs=graphs, sync_every=sync_every)
    if source.next < len(jobs):  # the workspace is sized for every job: this is a bug, not bad input
        raise RuntimeError(f"{len(jobs) - source.next} jobs did not fit the workspace made for them")
    return source.results
