"""Choosing the next delayed frame for every row of a batch.

Each row owns a torch.Generator. A row that samples, or may redraw under RAS,
draws the same random numbers every step (one uniform per codebook for
sampling, one for RAS) whether or not it uses them, so a request's codes depend
only on its own seed, never on its batch; a greedy row without RAS draws none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from higgs_cli.engine.delay import STREAM_BOS, STREAM_EOS
from higgs_cli.engine.request import Sampling


@dataclass
class RowState:
    """Where one request stands in its stream of delayed frames."""

    sampling: Sampling
    generator: torch.Generator
    max_steps: int
    num_codebooks: int
    step: int = 0  # index of the frame being generated next
    eos_step: int | None = None  # the first frame in which any codebook ended
    frames: list[torch.Tensor] = field(default_factory=list)
    done: bool = False
    finished: bool = False  # the model ended the stream (vs. the length limit)

    def forced_bounds(self) -> tuple[int, int]:
        """The delay pattern at this step: codebooks [0, eos_until) are forced to stream EOS
        (codebook k ends k + 1 frames after the first EOS) and [bos_from, K) to stream BOS
        (codebook k starts k frames late); BOS wins where both apply."""
        eos_until = 0 if self.eos_step is None else max(0, self.step - self.eos_step)
        return eos_until, self.step

    def forced(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Codebooks forced to stream BOS / EOS at this step, as masks (K,)."""
        eos_until, bos_from = self.forced_bounds()
        k = torch.arange(self.num_codebooks)
        return k >= bos_from, k < eos_until

    def window(self) -> torch.Tensor:
        """The last `ras_window` generated frames, (W, K); -1 where there are fewer."""
        size = self.sampling.ras_window
        recent = self.frames[-size:] if size else []
        out = torch.full((size, self.num_codebooks), -1, dtype=torch.long)
        if recent:
            out[size - len(recent):] = torch.stack(recent)
        return out

    @property
    def draws(self) -> bool:
        """Whether this row draws random numbers: it samples, or may redraw under RAS."""
        return self.sampling.temperature > 0 or (self.sampling.ras_window > 0 and self.sampling.ras_max_repeat > 0)

    def force(self, choice: torch.Tensor) -> None:
        """Set the forced codebooks in this row's chosen frame (K,) by index ranges."""
        eos_until, bos_from = self.forced_bounds()
        if eos_until:
            choice[:eos_until] = STREAM_EOS
        if bos_from < self.num_codebooks:
            choice[bos_from:] = STREAM_BOS

    def advance(self, frame: torch.Tensor, codes: list[int] | None = None) -> None:
        """Record the chosen frame (K,); `codes` is the same frame as a list, when at hand."""
        self.frames.append(frame)
        ended = [code == STREAM_EOS for code in (frame.tolist() if codes is None else codes)]
        if self.eos_step is None and any(ended):
            self.eos_step = self.step
        self.step += 1
        if all(ended):
            self.done = self.finished = True
        elif self.step >= self.max_steps:
            self.done = True


def _nucleus(scores: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Mask scores (B, K, V) outside each row's top-k and top-p (B,) with -inf."""
    sorted_scores, order = scores.sort(dim=-1, descending=True)
    vocab = scores.shape[-1]
    ranks = torch.arange(vocab, device=scores.device)
    probs = sorted_scores.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass of strictly better tokens
    drop = (ranks[None, None] >= top_k[:, None, None]) | (before >= top_p[:, None, None])
    drop[..., 0] = False
    return scores.scatter(-1, order, sorted_scores.masked_fill(drop, float("-inf")))


def _draw(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: probs (B, K, V), uniforms (B, K) in [0, 1)."""
    cdf = probs.cumsum(dim=-1)
    target = (uniforms * cdf[..., -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, target).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def choose_frames(logits: torch.Tensor, rows: list[RowState]) -> torch.Tensor:
    """Pick the next frame (B, K) for each row from raw logits (B, K, V) (float32)."""
    logits = logits.float().cpu()
    batch, num_codebooks, vocab = logits.shape
    uniforms = None  # (B, 2, K), where any row draws; zeros for the rows that don't
    if any(row.draws for row in rows):
        uniforms = torch.stack([torch.rand(2, num_codebooks, generator=row.generator) if row.draws
                                else torch.zeros(2, num_codebooks) for row in rows])
    if all(row.sampling.temperature <= 0 for row in rows):  # no masking needed: forced codebooks set after
        choice = logits.argmax(dim=-1)
        for row, chosen in zip(rows, choice):
            row.force(chosen)
    else:
        temperature = torch.tensor([row.sampling.temperature for row in rows])
        greedy = temperature <= 0
        bos, eos = zip(*(row.forced() for row in rows))
        bos, eos = torch.stack(bos), torch.stack(eos)
        scores = logits.clone()
        not_bos = torch.arange(vocab) != STREAM_BOS
        not_eos = torch.arange(vocab) != STREAM_EOS
        scores[bos[..., None] & not_bos] = float("-inf")
        scores[eos[..., None] & not_eos] = float("-inf")
        warm = scores / temperature.clamp(min=1e-5)[:, None, None]
        top_k = torch.tensor([row.sampling.top_k or vocab for row in rows])
        top_p = torch.tensor([row.sampling.top_p for row in rows], dtype=torch.float32)
        drawn = _draw(_nucleus(warm, top_k, top_p).softmax(dim=-1), uniforms[:, 0])
        choice = torch.where(greedy[:, None], scores.argmax(dim=-1), drawn)
        choice = torch.where(bos, STREAM_BOS, torch.where(eos, STREAM_EOS, choice))

    # Repetition-aware sampling (Boson's RAS): a code already chosen max_repeat
    # times in the row's recent window is drawn again from the plain softmax.
    for b, row in enumerate(rows):
        window, limit = row.sampling.ras_window, row.sampling.ras_max_repeat
        if window <= 0 or limit <= 0 or not row.frames:
            continue
        recent = row.window()
        counted = (recent == choice[b][None]) & (recent != STREAM_BOS) & (recent != STREAM_EOS)
        repeat = counted.sum(dim=0) >= limit
        if bool(repeat.any()):
            redraw = _draw(logits[b:b + 1].softmax(dim=-1), uniforms[b:b + 1, 1])[0]
            choice[b] = torch.where(repeat, redraw, choice[b])
    return choice
