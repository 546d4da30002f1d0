"""Choosing the next delayed frame for a whole batch at once, on the model's device.

Every rule is a tensor op over (rows, codebooks, vocabulary): delay-pattern
forcing, temperature, top-k, top-p and RAS, with no Python per row and no copy
to the host, so a captured decode step (CUDA graph) can include it. Random
numbers come from `rng.uniforms` (a hash of seed, step and codebook), so a
request's codes depend only on its own seed, in any batch and on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from higgs_cli.engine.decode import rng
from higgs_cli.engine.model.delay import STREAM_BOS, STREAM_EOS

NO_EOS = 1 << 40  # eos_step of a row that has not emitted EOS yet


@dataclass(frozen=True)
class Mode:
    """What a batch needs, known on the host when its jobs are set: which ops a step runs.

    `samples`: some row has temperature > 0; `window`: the longest RAS window of
    the rows with RAS on (0: none). Fixed for a run, so a captured step stays valid.
    """

    samples: bool = False
    window: int = 0


@dataclass
class RowSettings:
    """Per-row sampling settings and counters, (B,) tensors on one device."""

    seeds: torch.Tensor  # int64
    steps: torch.Tensor  # int64: the frame being generated next
    eos_steps: torch.Tensor  # int64: the first frame with an EOS, NO_EOS before
    temperature: torch.Tensor  # float32; <= 0 is greedy
    top_k: torch.Tensor  # int64; the vocabulary size when unset
    top_p: torch.Tensor  # float32
    ras_window: torch.Tensor  # int64; 0 is off
    ras_max_repeat: torch.Tensor  # int64


def forced_masks(steps: torch.Tensor, eos_steps: torch.Tensor, num_codebooks: int) -> tuple[torch.Tensor, ...]:
    """Codebooks the delay pattern forces to stream BOS / EOS, (B, K) each.

    Codebook k starts k frames late (BOS while step <= k) and ends k + 1 frames
    after the first EOS; BOS wins where both apply.
    """
    k = torch.arange(num_codebooks, device=steps.device)[None]
    bos = k >= steps[:, None]
    eos = k < (steps - eos_steps)[:, None]
    return bos, eos


def apply_forcing(choice: torch.Tensor, steps: torch.Tensor, eos_steps: torch.Tensor) -> torch.Tensor:
    """`choice` (B, K) with the forced codebooks set to stream BOS / EOS."""
    bos, eos = forced_masks(steps, eos_steps, choice.shape[-1])
    return torch.where(bos, STREAM_BOS, torch.where(eos, STREAM_EOS, choice))


def nucleus_keep(before: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Which descending-sorted tokens (B, K, V) survive top-k and top-p (B,), given `before`,
    the probability mass of the strictly better tokens of each.

    A token is kept when its rank is below top_k and `before` is below top_p; the
    best token is always kept. Both rules keep a prefix of the sorted tokens.
    """
    ranks = torch.arange(before.shape[-1], device=before.device)
    keep = (ranks[None, None] < top_k[:, None, None]) & (before < top_p[:, None, None])
    keep[..., 0] = True
    return keep


def draw(cdf: torch.Tensor, total: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: the first index whose running mass `cdf` (B, K, V) reaches
    uniforms (B, K) in (0, 1) times `total` (B, K) (the mass of the tokens allowed).

    The uniforms are never 0, so a token without mass (a flat step of the cdf) is never
    the first to reach the target, and the target never passes `total`.
    """
    return torch.searchsorted(cdf, (uniforms * total).unsqueeze(-1)).squeeze(-1)


def plain_draw(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """A draw from the plain softmax of logits (B, K, V): unnormalized weights, no division."""
    weights = (logits - logits.amax(dim=-1, keepdim=True)).exp()
    cdf = weights.cumsum(dim=-1)
    return draw(cdf, cdf[..., -1], uniforms)


def sample(logits: torch.Tensor, rows: RowSettings, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw from temperature, top-k and top-p: codes (B, K) from logits (B, K, V).

    One sort, one exp and one running sum serve the nucleus rule and the draw: the
    kept tokens are a prefix of the sorted ones, so their mass is the running sum at
    the last kept token.
    """
    warm = logits / rows.temperature.clamp(min=1e-5)[:, None, None]
    sorted_warm, order = warm.sort(dim=-1, descending=True)
    weights = (sorted_warm - sorted_warm[..., :1]).exp()
    cdf = weights.cumsum(dim=-1)
    keep = nucleus_keep((cdf - weights) / cdf[..., -1:], rows.top_k, rows.top_p)
    kept_mass = cdf.gather(-1, keep.sum(dim=-1, keepdim=True) - 1).squeeze(-1)
    picked = draw(cdf, kept_mass, uniforms)
    return order.gather(-1, picked.unsqueeze(-1)).squeeze(-1)


def recent_frames(frames: torch.Tensor, slots: torch.Tensor, rows: RowSettings, window: int) -> torch.Tensor:
    """Each row's last `ras_window` generated frames from the frame buffer (S, T, K): (B, window, K),
    newest first, -1 where a row has fewer frames or a shorter window."""
    back = torch.arange(window, device=frames.device)[None]
    index = rows.steps[:, None] - 1 - back  # (B, window)
    valid = (index >= 0) & (back < rows.ras_window[:, None])
    gathered = frames[slots[:, None], index.clamp(min=0)]
    return torch.where(valid[..., None], gathered, -1)


def ras_repeats(choice: torch.Tensor, recent: torch.Tensor, rows: RowSettings) -> torch.Tensor:
    """Codebooks (B, K) whose chosen code occurs >= ras_max_repeat times in `recent` (B, W, K),
    stream BOS/EOS not counted (Boson's repetition-aware sampling); rows with RAS off: none."""
    counted = (recent == choice[:, None]) & (recent != STREAM_BOS) & (recent != STREAM_EOS)
    on = (rows.ras_window > 0) & (rows.ras_max_repeat > 0)
    return (counted.sum(dim=1) >= rows.ras_max_repeat[:, None]) & on[:, None]


def choose(logits: torch.Tensor, rows: RowSettings, mode: Mode, recent: torch.Tensor | None = None) -> torch.Tensor:
    """The next frame (B, K) for each row from raw logits (B, K, V) (float32).

    Greedy rows take the argmax exactly (parity with transformers); sampled rows
    draw with their SAMPLE_STREAM uniform; then the delay pattern forces its
    codebooks; then RAS redraws repeats from the plain softmax with RAS_STREAM.
    `recent` (from `recent_frames`) is needed when mode.window > 0.
    """
    choice = logits.argmax(dim=-1)
    draws = None
    if mode.samples or mode.window:
        draws = rng.uniforms(rows.seeds, rows.steps, logits.shape[1])
    if mode.samples:
        drawn = sample(logits, rows, draws[:, rng.SAMPLE_STREAM])
        choice = torch.where((rows.temperature > 0)[:, None], drawn, choice)
    choice = apply_forcing(choice, rows.steps, rows.eos_steps)
    if mode.window:
        repeats = ras_repeats(choice, recent, rows)
        # a CPU checks first whether any code repeats (a free read there); a GPU step
        # keeps static work and never waits for the host
        if logits.device.type != "cpu" or bool(repeats.any()):
            redraw = plain_draw(logits, draws[:, rng.RAS_STREAM])
            choice = torch.where(repeats, redraw, choice)
    return choice
