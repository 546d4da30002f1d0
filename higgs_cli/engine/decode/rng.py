"""Counter-based random numbers: a uniform in (0, 1) from (seed, step, codebook, stream).

Each number is a hash of its counters, computed with integer tensor ops on the
model's device, so a request's draws depend only on its own seed and where it
stands (never on its batch, on the order of calls or on the device), and a
whole batch draws in a few element-wise ops with no host round trip.

The hash is Chris Wellons' `lowbias32` mixer applied in a chain over the
counters. Values are held as 32-bit unsigned numbers inside int64 tensors.
Products are split in 16-bit halves so that no intermediate exceeds 2^49:
signed overflow never happens, and right shifts (arithmetic in torch) only see
non-negative values.
"""

from __future__ import annotations

import torch

MASK32 = 0xFFFFFFFF
_MIX_A = 0x7FEB352D
_MIX_B = 0x846CA68B
_GOLDEN = 0x9E3779B9  # keeps a zero counter from mapping zero to zero
UNIFORM_BITS = 23  # (k + 0.5) / 2^23: odd multiples of 2^-24, all exact in float32, the largest 1 - 2^-24

SAMPLE_STREAM = 0  # the draw from the tempered, top-k/top-p distribution
RAS_STREAM = 1  # the redraw from the plain softmax when RAS rejects a repeat
STREAMS = 2


def _times(x: torch.Tensor, constant: int) -> torch.Tensor:
    """(x * constant) mod 2^32 for x in [0, 2^32), without overflowing int64."""
    high, low = constant >> 16, constant & 0xFFFF
    return (x * low + (((x * high) & 0xFFFF) << 16)) & MASK32


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit hash (lowbias32) of x in [0, 2^32), as int64."""
    x = x ^ (x >> 16)
    x = _times(x, _MIX_A)
    x = x ^ (x >> 15)
    x = _times(x, _MIX_B)
    return x ^ (x >> 16)


def hash_counters(*counters: torch.Tensor) -> torch.Tensor:
    """One 32-bit hash of several int64 counter tensors (broadcast together), each taken mod 2^32."""
    state = torch.full((), _GOLDEN, dtype=torch.int64, device=counters[0].device)
    for counter in counters:
        state = mix32(((state ^ (counter & MASK32)) + _GOLDEN) & MASK32)
    return state


def uniforms(seeds: torch.Tensor, steps: torch.Tensor, num_codebooks: int) -> torch.Tensor:
    """Uniforms in (0, 1), (B, STREAMS, K) float32, for rows with `seeds` (B,) at frame `steps` (B,).

    Stream SAMPLE_STREAM is for sampling and RAS_STREAM for the RAS redraw: separate
    counters, so a redraw never reuses the number that chose the rejected code.
    """
    device = seeds.device
    stream = torch.arange(STREAMS, device=device)[None, :, None]
    codebook = torch.arange(num_codebooks, device=device)[None, None, :]
    # one counter for (step, codebook, stream): two hash rounds a step instead of four
    counter = (steps[:, None, None] * num_codebooks + codebook) * STREAMS + stream
    bits = hash_counters(seeds[:, None, None], counter)
    # the middle of each of 2^24 equal steps: never 0 or 1 (see sampling.draw)
    return ((bits >> (32 - UNIFORM_BITS)).to(torch.float32) + 0.5) * (1.0 / (1 << UNIFORM_BITS))
