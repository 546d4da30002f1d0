"""The delay pattern: codebook k lags k frames behind codebook 0.

A stream of T frames (codebooks x T) becomes T + 2 + (K - 1) delayed frames:
BOS on and below the diagonal at the start, EOS on and above it at the end.
"""

from __future__ import annotations

import numpy as np

STREAM_BOS = 1024
STREAM_EOS = 1025


def build_delay_pattern(codes: np.ndarray) -> np.ndarray:
    """(K, T) codes -> (T + K + 1, K) delayed frames, with stream BOS and EOS."""
    num_codebooks, length = codes.shape
    framed = np.concatenate([np.full((num_codebooks, 1), STREAM_BOS), codes,
                             np.full((num_codebooks, 1), STREAM_EOS)], axis=1)
    total = length + 2 + num_codebooks - 1
    delayed = np.empty((num_codebooks, total), dtype=np.int64)
    for k in range(num_codebooks):
        delayed[k, :k] = STREAM_BOS
        delayed[k, k:k + length + 2] = framed[k]
        delayed[k, k + length + 2:] = STREAM_EOS
    return delayed.T


def revert_delay_pattern(frames: np.ndarray) -> np.ndarray:
    """(N, K) delayed frames -> (K, N - K + 1) aligned codes: the diagonal slices."""
    length, num_codebooks = frames.shape
    usable = length - num_codebooks + 1
    if usable <= 0:
        return np.zeros((num_codebooks, 0), dtype=np.int64)
    return np.stack([frames[k:k + usable, k] for k in range(num_codebooks)])


def generated_codes(frames: np.ndarray) -> np.ndarray:
    """Codes from a generated stream (N, K) that starts with its BOS frame.

    Drops the BOS frame and everything from the first all-EOS frame on,
    reverts the delay and clips stray BOS/EOS to valid codes, as transformers'
    processor does before decoding.
    """
    body = frames[1:]
    ends = np.flatnonzero((body == STREAM_EOS).all(axis=1))
    if len(ends):
        body = body[:ends[0]]
    return np.clip(revert_delay_pattern(body), 0, STREAM_BOS - 1)
