"""One decode step (forward, sampling, bookkeeping) as a single device-only function.

The step reads and writes only the KV cache and the slot table, in place, with
static shapes when the span is the cache's capacity: on CUDA it is captured
whole into a CUDA graph and replayed, so the host only launches it and syncs
every few steps. Cache and table are kept between calls of the same shape, so
a captured graph is reused across `generate` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from higgs_cli.engine.decode.sampling import Mode
from higgs_cli.engine.decode.slots import SlotTable
from higgs_cli.engine.model.forward import Runner, StaticCache

Forward = Callable[[StaticCache, torch.Tensor, torch.Tensor, int], torch.Tensor]
SYNC_EVERY_CUDA = 8  # steps between host reads of the done mask on a GPU
SYNC_EVERY_CPU = 1  # on a CPU a read costs nothing: finished rows are refilled at once


def sync_interval(device: torch.device) -> int:
    return SYNC_EVERY_CUDA if device.type == "cuda" else SYNC_EVERY_CPU


def device_step(forward: Forward, cache: StaticCache, table: SlotTable, mode: Mode, span: int) -> None:
    """Advance every slot that is not done by one frame, on the device only."""
    logits = forward(cache, table.lengths, table.last, span)
    table.choose_and_record(logits, mode)


class CapturedStep:
    """`device_step` over fixed tensors, recorded once into a CUDA graph and replayed.

    Recording runs the step twice first (warm-up, on a side stream, as CUDA graphs
    require); the table is restored afterwards, and the cache positions those runs
    wrote are written again by the real steps before anything reads them.
    """

    def __init__(self, forward: Forward, cache: StaticCache, table: SlotTable, mode: Mode) -> None:
        self.run = lambda: device_step(forward, cache, table, mode, cache.capacity)
        self.table = table
        self.graph: torch.cuda.CUDAGraph | None = None

    def _record(self) -> None:
        saved = [t.clone() for t in self.table.tensors()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(2):
                self.run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            self.run()
        for tensor, value in zip(self.table.tensors(), saved):
            tensor.copy_(value)
        self.graph = graph

    def __call__(self) -> None:
        if self.graph is None:
            self._record()
        self.graph.replay()


@dataclass
class Workspace:
    """A cache, a slot table and (on CUDA with graphs) the captured step, for one shape."""

    key: tuple
    cache: StaticCache
    table: SlotTable
    captured: CapturedStep | None = None


class Workspaces:
    """The last few workspaces by shape, so repeated calls reuse memory and captured graphs."""

    def __init__(self, keep: int = 1) -> None:
        self.keep = keep
        self.items: list[Workspace] = []

    def get(self, runner: Runner, *, slots: int, capacity: int, max_frames: int, mode: Mode,
            dtype: torch.dtype, device: torch.device) -> Workspace:
        key = (slots, capacity, max_frames, mode, dtype, str(device))
        for item in self.items:
            if item.key == key:
                item.table.reset()
                return item
        while len(self.items) >= self.keep:  # free memory before allocating more
            self.items.pop(0)
        cache = StaticCache(runner.config, slots, capacity, dtype, device)
        table = SlotTable(slots, max_frames, runner.num_codebooks, runner.codebook_size, device)
        item = Workspace(key, cache, table)
        self.items.append(item)
        return item


def make_step(runner: Runner, work: Workspace, mode: Mode, compiled: Forward | None,
              graphs: bool) -> Callable[[int], None]:
    """The decode step to call with a span: a captured CUDA graph (span fixed at the capacity),
    else the compiled or eager forward followed by the device-side choice."""
    forward = compiled if compiled is not None else runner.decode
    if graphs:
        if work.captured is None:
            work.captured = CapturedStep(compiled or runner.decode_step, work.cache, work.table, mode)
        captured = work.captured
        return lambda span: captured()
    return lambda span: device_step(forward, work.cache, work.table, mode, span)
