"""Continuous batching: a fixed set of slots over one static KV cache.

Waiting requests take free slots (prefill), every busy slot advances one frame
per decode step, and a finished request frees its slot for the next one, so a
long line never holds up the batch. A prompt's system/scene/reference part is
prefilled once and its keys and values copied into every slot that shares it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from higgs_cli.engine.decode.slots import mode_for
from higgs_cli.engine.decode.step import Workspaces, make_step, sync_interval
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


def run_jobs(runner: Runner, jobs: Sequence[Job], *, slots: int, device: torch.device, dtype: torch.dtype,
             prefixes: PrefixStore | None = None,
             on_frames: Callable[[int], None] | None = None,
             on_frame: Callable[[int, torch.Tensor], None] | None = None,
             compiled_decode: Callable | None = None, graphs: bool = False,
             workspaces: Workspaces | None = None, sync_every: int | None = None) -> list[tuple[np.ndarray, bool]]:
    """Generate every job; returns each job's delayed frames (N, K) and whether the model ended it.

    The decode loop runs on the device: every step chooses and records the next
    frame of every slot there (`SlotTable`), and the host reads which slots are
    done only every `sync_every` steps (default: 8 on CUDA, 1 on CPU), to
    collect their frames and admit waiting jobs.

    `on_frames(n)` is told how many frames were made since its last call (at
    each host sync); `on_frame(job_index, frame)` sees every frame of every job.
    `compiled_decode(cache, lengths, frames, span)` replaces the eager forward;
    with `graphs` (CUDA) the whole step is captured in a CUDA graph, attending
    over the whole cache; on CPU (dynamic shapes) as far as the longest row, in
    steps of SPAN_STEP.
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
    cache, table = work.cache, work.table
    step = make_step(runner, work, mode, compiled_decode, graphs)
    sync_every = sync_interval(device) if sync_every is None else max(1, sync_every)
    waiting = list(range(len(jobs)))[::-1]
    owner: list[int] = [-1] * slots  # the job in each slot, -1 when free
    starts = [0] * slots  # each occupied slot's prompt length
    reported = [0] * slots  # frames of each slot already reported
    results: list[tuple[np.ndarray, bool] | None] = [None] * len(jobs)

    def sync() -> None:
        """Read the done mask and frame counts; report new frames; collect finished slots."""
        done, steps = table.status()
        made = 0
        for slot in range(slots):
            if owner[slot] < 0:
                continue
            made += steps[slot] - reported[slot]
            if on_frame is not None and steps[slot] > reported[slot]:
                for frame in table.frames[slot, reported[slot]:steps[slot]].to("cpu", copy=True):
                    on_frame(owner[slot], frame)
            reported[slot] = steps[slot]
            if done[slot]:
                frames, finished = table.read(slot, steps[slot])
                results[owner[slot]] = (frames.numpy(), finished)
                owner[slot] = -1
        if made and on_frames is not None:
            on_frames(made)
        nonlocal furthest
        furthest = max((starts[s] + steps[s] for s in range(slots) if owner[s] >= 0), default=0)

    def share_prefixes(free: list[int]) -> None:
        """Prefill, once each, the missing prefixes that several of the next jobs share."""
        upcoming = [jobs[i].prompt for i in reversed(waiting[-len(free):])]
        counts: dict[bytes, int] = {}
        for prompt in upcoming:
            if prompt.prefix_len:
                counts[prompt.prefix_key] = counts.get(prompt.prefix_key, 0) + 1
        missing = {key for key, n in counts.items() if n > 1 and prefixes.get(key, count=False) is None}
        for slot, prompt in zip(free, upcoming):
            if prompt.prefix_key in missing:
                missing.discard(prompt.prefix_key)
                ids = torch.as_tensor(prompt.input_ids[:prompt.prefix_len], device=device)
                runner.prefill_many(cache, [(slot, ids, torch.as_tensor(prompt.audio_frames, device=device), 0)])
                prefixes.put(prompt.prefix_key, cache.read(slot, prompt.prefix_len))

    def admit(free: list[int]) -> None:
        """Give each free slot a waiting job, prefill them together and choose their first frames."""
        if prefixes is not None:
            share_prefixes(free)
        prefill_rows, admitted = [], []
        for slot in free:
            if not waiting:
                break
            index = waiting.pop()
            prompt = jobs[index].prompt
            ids = torch.as_tensor(prompt.input_ids, device=device)
            frames = torch.as_tensor(prompt.audio_frames, device=device)
            start = 0
            stored = prefixes.get(prompt.prefix_key) if prefixes is not None and prompt.prefix_len else None
            if stored is not None:
                cache.write(slot, stored)
                start = prompt.prefix_len
                frames = frames[:0]  # reference audio lives in the prefix
            prefill_rows.append((slot, ids, frames, start))
            admitted.append((slot, index))
        if not prefill_rows:
            return
        logits = runner.prefill_many(cache, prefill_rows)
        for (slot, index), (_, _, _, start) in zip(admitted, prefill_rows):
            job = jobs[index]
            prompt = job.prompt
            if prefixes is not None and prompt.prefix_len and start == 0:
                prefixes.put(prompt.prefix_key, cache.read(slot, prompt.prefix_len))
            table.admit(slot, length=len(prompt.input_ids), sampling=job.sampling, seed=job.seed,
                        max_steps=job.max_steps)
            owner[slot], starts[slot], reported[slot] = index, len(prompt.input_ids), 0
        table.choose_and_record(logits, mode, torch.tensor([slot for slot, _ in admitted], device=device))

    furthest = 0  # an upper bound of the next position of every occupied slot, + 1
    with torch.no_grad():
        while True:
            sync()
            while waiting and -1 in owner:  # refill free slots; a job may end on its first frame
                admit([slot for slot in range(slots) if owner[slot] < 0])
                sync()
            if all(slot < 0 for slot in owner):
                break
            for ahead in range(sync_every):
                span = min(cache.capacity, furthest + ahead)
                if compiled_decode is not None and device.type == "cpu":  # dynamic shapes: as far as needed
                    span = min(cache.capacity, -(-span // SPAN_STEP) * SPAN_STEP)
                step(span)
    return results
