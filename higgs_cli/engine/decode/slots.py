"""The state of every batch slot as tensors on the model's device.

A decode step reads and updates it in place (positions, the previous frame,
counters, the frame buffer, the done mask) without the host: the host sets a
slot when a job is admitted, and reads the done mask and finished frames only
when it syncs, every few steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from higgs_cli.engine.decode.sampling import NO_EOS, Mode, RowSettings, choose, recent_frames
from higgs_cli.engine.model.delay import STREAM_BOS, STREAM_EOS
from higgs_cli.engine.request import Sampling


def mode_for(settings: Sequence[Sampling]) -> Mode:
    """The ops a batch of these settings needs."""
    windows = [s.ras_window for s in settings if s.ras_window > 0 and s.ras_max_repeat > 0]
    return Mode(samples=any(s.temperature > 0 for s in settings), window=max(windows, default=0))


class SlotTable:
    """Per-slot tensors (S leading) on one device; updated in place so their addresses stay
    fixed (a captured CUDA graph reads and writes these very tensors)."""

    def __init__(self, slots: int, max_frames: int, num_codebooks: int, vocab: int, device: torch.device) -> None:
        def zeros(dtype=torch.int64, *shape):
            return torch.zeros(shape or (slots,), dtype=dtype, device=device)

        self.ids = torch.arange(slots, device=device)
        self.lengths = zeros()  # each slot's next position
        self.last = torch.full((slots, num_codebooks), STREAM_BOS, dtype=torch.long, device=device)
        self.frames = zeros(torch.int64, slots, max_frames + 1, num_codebooks)  # + 1: see choose_and_record
        self.limits = zeros()
        self.done = torch.ones(slots, dtype=torch.bool, device=device)  # a free slot counts as done
        self.finished = zeros(torch.bool)
        self.rows = RowSettings(seeds=zeros(), steps=zeros(), eos_steps=torch.full_like(self.lengths, NO_EOS),
                                temperature=zeros(torch.float32), top_k=torch.full_like(self.lengths, vocab),
                                top_p=torch.ones(slots, device=device), ras_window=zeros(),
                                ras_max_repeat=zeros())
        self.vocab = vocab

    def tensors(self) -> list[torch.Tensor]:
        """Every state tensor (what a step may change)."""
        return [self.lengths, self.last, self.frames, self.limits, self.done, self.finished,
                *(getattr(self.rows, name) for name in RowSettings.__dataclass_fields__)]

    def reset(self) -> None:
        """Every slot free again (in place: the tensors keep their addresses)."""
        self.done.fill_(True)
        self.finished.fill_(False)
        self.last.fill_(STREAM_BOS)
        self.lengths.zero_()

    def admit(self, slot: int, *, length: int, sampling: Sampling, seed: int, max_steps: int) -> None:
        """Set a slot for a new job whose prompt is `length` tokens (a few small host-to-device writes)."""
        values = {"seeds": seed, "steps": 0, "eos_steps": NO_EOS, "temperature": sampling.temperature,
                  "top_k": sampling.top_k or self.vocab, "top_p": sampling.top_p,
                  "ras_window": sampling.ras_window, "ras_max_repeat": sampling.ras_max_repeat}
        for name, value in values.items():
            getattr(self.rows, name)[slot] = value
        self.lengths[slot] = length
        self.limits[slot] = max_steps
        self.done[slot] = False
        self.finished[slot] = False

    def head(self, n: int) -> SlotTable:
        """The first `n` slots as a table of views (the same memory): an eager decode step over
        only them, when the slots beyond are free (the online scheduler fills the lowest first)."""
        if n >= len(self.ids):
            return self
        view = object.__new__(SlotTable)
        for name in ("ids", "lengths", "last", "frames", "limits", "done", "finished"):
            setattr(view, name, getattr(self, name)[:n])
        view.rows = RowSettings(*(getattr(self.rows, name)[:n] for name in RowSettings.__dataclass_fields__))
        view.vocab = self.vocab
        return view

    def settings(self, slots: torch.Tensor | None) -> RowSettings:
        """The rows of these slots (all of them, as views, when None)."""
        if slots is None:
            return self.rows
        return RowSettings(*(getattr(self.rows, name)[slots] for name in RowSettings.__dataclass_fields__))

    def choose_and_record(self, logits: torch.Tensor, mode: Mode, slots: torch.Tensor | None = None) -> None:
        """Choose the next frame of these slots (every slot when None) from their logits and record it.

        Slots that are done keep their state; every op is on the device, so this
        is part of a capturable decode step. With every slot (a decode step) the
        tensors are updated whole, in place, without index ops.
        """
        def take(tensor: torch.Tensor) -> torch.Tensor:
            return tensor if slots is None else tensor[slots]

        def put(tensor: torch.Tensor, value: torch.Tensor) -> None:
            if slots is None:
                tensor.copy_(value)
            else:
                tensor[slots] = value

        rows = self.settings(slots)
        index = self.ids if slots is None else slots
        recent = recent_frames(self.frames, index, rows, mode.window) if mode.window else None
        choice = choose(logits, rows, mode, recent)
        active = ~take(self.done)
        step = rows.steps
        # a done slot writes past its own frames (the buffer has a spare row): never read
        self.frames.index_put_((index, step), choice)
        put(self.last, torch.where(active[:, None], choice, take(self.last)))
        ended = choice == STREAM_EOS
        all_eos = active & ended.all(dim=-1)
        put(self.rows.eos_steps, torch.where(active & ended.any(dim=-1), torch.minimum(step, rows.eos_steps),
                                             rows.eos_steps))
        after = step + active
        put(self.rows.steps, after)
        put(self.finished, take(self.finished) | all_eos)
        put(self.done, take(self.done) | all_eos | (after >= take(self.limits)))
        if slots is None:  # decode: the slots that advanced move one position on
            self.lengths += active

    def status(self) -> tuple[list[bool], list[int]]:
        """The done mask and frame counts, read by the host (one small copy: a sync on a GPU)."""
        both = torch.cat([self.done.long(), self.rows.steps]).tolist()
        half = len(both) // 2
        return [bool(d) for d in both[:half]], both[half:]

    def read(self, slot: int, count: int) -> tuple[torch.Tensor, bool]:
        """A finished slot's frames (count, K) on the host and whether the model ended it."""
        # a copy (on CPU `.cpu()` is a view, and the slot's next job overwrites it)
        return self.frames[slot, :count].to("cpu", copy=True), bool(self.finished[slot])
