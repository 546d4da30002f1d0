"""Audio from frames while they are generated: decode every `chunk_frames` frames, seamlessly.

Used by `ModelSession.stream` and by the server's streamed responses, so both
yield the very same chunks for the same frames. Each chunk is decoded with the
frames before it as context and only its new samples are returned; the newest
frames are held back while generating (delayed codebooks are incomplete, and
the decoder looks a few frames ahead).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from higgs_cli.engine.model.delay import generated_codes
from higgs_cli.engine.request import CHUNK_FRAMES

# The codec's decoder sees about 10 frames either way: 12 earlier frames as context give the
# same samples as 25 or 100 (5.7e-5 from a whole decode of 200 frames, the lookahead's part;
# 8 frames give 1.8e-3), and a stream decodes 364 frames for 200 instead of 455 with 25.
CONTEXT_FRAMES = 12
LOOKAHEAD = 8  # frames held back until the end: the decoder looks this far ahead


class ChunkDecoder:
    """Feed delayed frames (K,) or (n, K) as they come; get audio chunks back."""

    def __init__(self, decode: Callable[[np.ndarray], np.ndarray], chunk_frames: int = CHUNK_FRAMES,
                 max_frames: int | None = None) -> None:
        """`max_frames`: the request's length limit. A chunk due less than half a chunk before
        the stream must end is left to `finish`, which then decodes once instead of twice
        (a 2 s request here: 2 decodes of 67 frames in all instead of 3 of 88)."""
        self.decode = decode
        self.chunk_frames = max(1, chunk_frames)
        self.max_frames = max_frames
        self.frames: list[np.ndarray] = []
        self.emitted = 0
        self._since = 0  # frames since the last decode

    def add(self, frames: np.ndarray) -> list[np.ndarray]:
        """Take new frames; return the chunks (zero or more) they complete."""
        chunks = []
        for frame in np.asarray(frames).reshape(-1, np.asarray(frames).shape[-1]):
            self.frames.append(frame)
            self._since += 1
            if self._since == self.chunk_frames:
                self._since = 0
                if self._near_the_end():
                    continue
                chunk = self._chunk(final=False)
                if chunk is not None:
                    chunks.append(chunk)
        return chunks

    def _near_the_end(self) -> bool:
        if self.max_frames is None:
            return False
        most = self.max_frames + len(self.frames[0])  # the delay pattern ends K frames after the codes
        return most - len(self.frames) < self.chunk_frames // 2

    def decodes_after(self, count: int) -> bool:
        """Whether adding `count` frames decodes a chunk (else `add` is cheap bookkeeping, fine to
        call on an event loop)."""
        return self._since + count >= self.chunk_frames

    def finish(self) -> np.ndarray | None:
        """The rest of the audio, once generation has ended (None when nothing is left)."""
        return self._chunk(final=True)

    def _chunk(self, *, final: bool) -> np.ndarray | None:
        if not self.frames:
            return None
        codes = generated_codes(np.stack(self.frames))
        ready = codes.shape[1] if final else codes.shape[1] - 1 - LOOKAHEAD
        if ready <= self.emitted:
            return None
        begin = max(0, self.emitted - CONTEXT_FRAMES)
        audio = self.decode(codes[:, begin:])
        per_frame = len(audio) // (codes.shape[1] - begin)
        chunk = audio[(self.emitted - begin) * per_frame:(ready - begin) * per_frame]
        self.emitted = ready
        return chunk
