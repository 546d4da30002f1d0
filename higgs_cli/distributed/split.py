"""How a generate() call is shared among workers, and how its audio is decoded.

Pure Python (no Ray, no torch), so it is tested alone. Two rules:

- Requests that share a voice and a scene (system prompt, scene, the voice
  reference: the prompt prefix the engine computes once and reuses) go to the
  same worker, so prefix reuse and continuous batching still work inside it;
  a group larger than a fair share is cut into consecutive pieces, one per
  worker it needs. Pieces are placed largest first on the least-loaded worker:
  deterministic.
- A line's codes do not depend on its batch (counter-based sampling), but the
  codec's batched decode does, slightly: equal-length clips decoded together
  differ from clips decoded alone in the last bits. `decode_groups` gives the
  groups `ModelSession.decode_many` forms over the whole call, so a distributed
  render decodes each clip with the same companions as a local one: the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from higgs_cli.engine.request import GenerationRequest


def _array_digest(array: np.ndarray | None) -> str:
    if array is None:
        return "-"
    array = np.ascontiguousarray(array)
    return hashlib.sha256(f"{array.dtype.str}{array.shape}".encode() + array.tobytes()).hexdigest()


def prefix_key(request: GenerationRequest) -> str:
    """What requests sharing a prompt prefix have in common: system, scene, and the first turn
    (the voice reference; later turns are the lines a request hears, which differ per line)."""
    first = request.history[0] if request.history else None
    parts = [request.system, request.scene or "",
             first.text if first else "",
             _array_digest(first.codes if first is not None and first.codes is not None
                           else first.audio if first is not None else None)]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def assign(requests: Sequence[GenerationRequest], workers: int) -> list[list[int]]:
    """The indexes of `requests` each of `workers` generates, in call order within each worker.

    The cost of a request is the frames it may take (its max_frames). A group larger than a fair
    share (an audiobook's one narrator in one scene) is cut into consecutive pieces of about a
    share each, so every worker gets work; each piece still shares its prefix inside its worker.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    groups: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault(prefix_key(request), []).append(index)
    total = sum(r.max_frames for r in requests)
    share = total / workers
    pieces: list[list[int]] = []
    for members in groups.values():
        cost = sum(requests[i].max_frames for i in members)
        parts = min(len(members), max(1, round(cost / share))) if workers > 1 else 1
        size = -(-len(members) // parts)  # ceiling
        pieces.extend(members[start:start + size] for start in range(0, len(members), size))
    cost_of = [sum(requests[i].max_frames for i in piece) for piece in pieces]
    load = [0] * workers
    shares: list[list[int]] = [[] for _ in range(workers)]
    # largest first; ties by first appearance (sorted() is stable)
    for n in sorted(range(len(pieces)), key=lambda n: -cost_of[n]):
        target = min(range(workers), key=lambda w: (load[w], w))
        shares[target].extend(pieces[n])
        load[target] += cost_of[n]
    return [sorted(share) for share in shares]


def chunks(indexes: Sequence[int], size: int) -> list[list[int]]:
    """`indexes` in consecutive pieces of at most `size` (one actor task each)."""
    return [list(indexes[start:start + size]) for start in range(0, len(indexes), max(1, size))]


def decode_groups(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """The clips `ModelSession.decode_many(batch, batch_size=batch_size)` decodes together, given
    each clip's frame count: clips of one length in order of first appearance, `batch_size` at a
    time. (tests/sessions/test_ray.py checks this against a local render, byte for byte.)"""
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        by_length.setdefault(int(length), []).append(index)
    return [group for members in by_length.values() for group in chunks(members, batch_size)]
