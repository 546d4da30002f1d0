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

from higgs_cli.engine.delay import STREAM_BOS
from higgs_cli.engine.forward import Runner, StaticCache
from higgs_cli.engine.prompt import Prompt
from higgs_cli.engine.request import Sampling
from higgs_cli.engine.sampling import RowState, choose_frames

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
             compiled_decode: Callable | None = None) -> list[tuple[np.ndarray, bool]]:
    """Generate every job; returns each job's delayed frames (N, K) and whether the model ended it.

    `on_frames(n)` is told how many frames each decode step produced;
    `on_frame(job_index, frame)` sees every frame of every job as it is made.
    `compiled_decode(cache, lengths, frames, span)` replaces the eager decode
    step; on GPU (CUDA graphs, static shapes) it attends over the whole cache,
    on CPU (dynamic shapes) as far as the longest row, in steps of SPAN_STEP.
    """
    if not jobs:
        return []
    needed = max(len(job.prompt.input_ids) + job.max_steps for job in jobs) + 1
    if compiled_decode is None:
        slots = max(1, min(slots, len(jobs)))
        capacity = -(-needed // CAPACITY_BUCKET) * CAPACITY_BUCKET
    else:  # a CUDA graph per shape: coarse sizes keep them few
        slots = max(1, min(slots, power_of_two(len(jobs))))
        capacity = max(CAPACITY_BUCKET, size_bucket(needed))
    cache = StaticCache(runner.config, slots, capacity, dtype, device)
    waiting = list(range(len(jobs)))[::-1]
    rows: list[RowState | None] = [None] * slots
    owner: list[int] = [-1] * slots
    lengths = [0] * slots  # each slot's next position (a free slot keeps its last one)
    last = torch.full((slots, runner.num_codebooks), STREAM_BOS, dtype=torch.long)
    results: list[tuple[np.ndarray, bool] | None] = [None] * len(jobs)

    def finish(slot: int) -> None:
        row = rows[slot]
        frames = torch.stack(row.frames).numpy() if row.frames else np.zeros((0, runner.num_codebooks), np.int64)
        results[owner[slot]] = (frames, row.finished)
        rows[slot] = None

    def emit(busy: list[int], logits: torch.Tensor) -> None:
        chosen = choose_frames(logits, [rows[s] for s in busy])
        if len(busy) == slots:
            last.copy_(chosen)
        else:
            last[busy] = chosen
        for slot, frame, codes in zip(busy, chosen, chosen.tolist()):
            rows[slot].advance(frame, codes)
            if on_frame is not None:
                on_frame(owner[slot], frame)

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
        """Give each free slot a waiting job and prefill them together."""
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
            rows[slot] = RowState(job.sampling, torch.Generator().manual_seed(job.seed), job.max_steps,
                                  runner.num_codebooks)
            owner[slot] = index
            lengths[slot] = len(prompt.input_ids)
        emit([slot for slot, _ in admitted], logits)
        if on_frames is not None:
            on_frames(len(admitted))

    while True:
        while True:  # finish what is done, refill free slots; a job may end on its first frame
            for slot in range(slots):
                if rows[slot] is not None and rows[slot].done:
                    finish(slot)
            free = [slot for slot in range(slots) if rows[slot] is None]
            if not free or not waiting:
                break
            admit(free)
        busy = [s for s in range(slots) if rows[s] is not None]
        if not busy:
            break
        positions = torch.tensor(lengths, device=device)
        if compiled_decode is None:
            logits = runner.decode(cache, positions, last.to(device))
        else:
            span = cache.capacity
            if device.type == "cpu":  # shapes are dynamic there: attend only as far as needed
                span = min(cache.capacity, -(-(max(lengths) + 1) // SPAN_STEP) * SPAN_STEP)
            logits = compiled_decode(cache, positions, last.to(device), span)
            if device.type == "cuda":  # a CUDA graph's output is overwritten by its next replay
                logits = logits.clone()
        for slot in busy:
            lengths[slot] += 1
        emit(busy, logits if len(busy) == slots else logits[torch.tensor(busy, device=device)])
        if on_frames is not None:
            on_frames(len(busy))
    return results
