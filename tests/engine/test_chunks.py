"""ChunkDecoder: streamed chunks join into the whole decode, and a long stream's decodes stay short."""

import numpy as np

from higgs_cli.engine.decode.chunks import CONTEXT_FRAMES, LOOKAHEAD, ChunkDecoder
from higgs_cli.engine.model.delay import generated_codes

K, PER_FRAME = 8, 960


def delayed_frames(n: int) -> np.ndarray:
    """n codes per codebook laid out with the delay pattern (codebook k starts k frames late)."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 1024, (K, n))
    frames = np.full((n + K - 1, K), 1025)
    for k in range(K):
        frames[:k, k] = 1024
        frames[k:k + n, k] = codes[k]
    return frames


def test_chunks_join_into_the_whole_decode_and_each_decode_is_bounded():
    seen: list[int] = []

    def decode(codes: np.ndarray) -> np.ndarray:  # a decoder whose samples depend on their own frame only
        seen.append(codes.shape[1])
        return np.repeat(codes.sum(0).astype(np.float32), PER_FRAME)

    frames = delayed_frames(400)
    chunks = ChunkDecoder(decode, 25)
    pieces = [piece for frame in frames for piece in chunks.add(frame)]
    pieces.append(chunks.finish())
    whole = decode(generated_codes(frames))
    assert np.array_equal(np.concatenate(pieces), whole)
    streamed = seen[:-1]  # the last entry is the whole decode above
    assert max(streamed) <= CONTEXT_FRAMES + 25 + LOOKAHEAD + 1
    assert sum(streamed) < 2.5 * 400  # every frame decoded about twice, not once per chunk of context


def test_a_chunk_due_just_before_the_length_limit_is_left_to_the_end():
    """With the request's length limit known, a chunk due less than half a chunk before the stream
    must end is not decoded on its own: the last decode takes it, and the join is the same."""
    def run(max_frames):
        seen: list[int] = []

        def decode(codes: np.ndarray) -> np.ndarray:
            seen.append(codes.shape[1])
            return np.repeat(codes.sum(0).astype(np.float32), PER_FRAME)

        frames = delayed_frames(50)  # 57 delayed frames: chunks due at 25 and 50
        chunks = ChunkDecoder(decode, 25, max_frames)
        pieces = [piece for frame in frames for piece in chunks.add(frame)]
        pieces.append(chunks.finish())
        streamed = list(seen)
        return np.concatenate(pieces), streamed, decode(generated_codes(frames))

    unknown, seen_unknown, whole = run(None)
    known, seen_known, _ = run(50)
    assert np.array_equal(unknown, whole) and np.array_equal(known, whole)
    assert len(seen_unknown) == 3 and len(seen_known) == 2
    assert sum(seen_known) < sum(seen_unknown)
    _, seen_long, _ = run(400)  # a limit far away: every chunk is decoded when due
    assert seen_long == seen_unknown
