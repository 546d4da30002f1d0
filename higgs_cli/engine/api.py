"""What callers may use of a model session, without importing torch.

`ModelSession` (engine/session.py) implements `Session`; so do the test doubles
(tests/fakes.py) and the project layer's `LazySession`. Code outside the engine
types its session parameters as `Session` and uses only these members, instead
of probing with `getattr(session, ...)`; a test checks that each implementation
has every member with the same signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

# typing_extensions' isinstance() reads no member (typing's reads each one before Python 3.12,
# which would load a LazySession's model)
from typing_extensions import Protocol, runtime_checkable

from higgs_cli.engine.request import CHUNK_FRAMES, GenerationRequest, GenerationResult

DEFAULT_BATCH_SIZE = 32
"""Lines generated together by default: `project render`, `say --input-file`, the server's slots and
every `Session.generate`."""
CODEC_BATCH_SIZE = 8
"""Clips of equal length the codec encodes or decodes in one pass by default (`encode_many`, `decode_many`)."""


@runtime_checkable
class Session(Protocol):
    """A loaded (or loadable) model: it generates requests and encodes and decodes audio codes."""

    name: str  # the Hub id or folder it was loaded from
    model_id: str  # fingerprint of the model's files: part of every cache key
    codec_id: str  # fingerprint of the audio tokenizer's files
    is_random: bool  # random-init weights (`higgs model init-random`): the audio is noise

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int], None] | None = None) -> list[GenerationResult]:
        """Generate every request (batched); `progress(frames)` after each decode step."""
        ...

    def stream(self, request: GenerationRequest, *, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """Yield 24 kHz audio while one request generates."""
        ...

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        """24 kHz mono audio -> (codebooks, frames) codes."""
        ...

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(codebooks, frames) codes -> 24 kHz mono audio."""
        ...
