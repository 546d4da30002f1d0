"""What one Ray actor runs: a `ModelSession`, loaded once, that generates codes and decodes them.

A plain class: `sessions/ray_session` makes it an actor with `ray.remote`. It imports the
engine inside its methods, so the client (which only plans and assembles) never
loads torch for it. Generation returns codes only; decoding is a separate call,
so that the client can decode each clip with the same companions as a local
render (split.decode_groups).

Threads: on CPU the codec's last bits depend on the thread count, the codes do
not. So the codec (decoding, encoding voices) runs with the count a local render
on this node uses (`configure_threads`, OMP_NUM_THREADS unset), and generation
with the CPUs Ray gives the actor (`threads`), so actors sharing a node do not
oversubscribe it for the long part.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Sequence

import numpy as np

from higgs_cli.engine.request import GenerationRequest


class ModelWorker:
    """One model session on one device of the cluster."""

    def __init__(self, model: str, *, revision: str | None = None, device: str | None = None,
                 compile: bool = False, threads: int | None = None) -> None:
        # Ray sets OMP_NUM_THREADS to the actor's CPUs; unset before torch loads, the session takes
        # the count a local render here takes, which the codec keeps
        os.environ.pop("OMP_NUM_THREADS", None)
        from higgs_cli.engine.model.placement import cpu_threads, set_cpu_threads
        from higgs_cli.engine.session import ModelSession

        self.session = ModelSession.load(model, revision=revision, device=device, compile=compile)
        self.codec_threads = cpu_threads()
        self.threads = threads or self.codec_threads  # for generation
        set_cpu_threads(self.threads)

    def identity(self) -> dict:
        """The model's fingerprints and where this worker runs."""
        s = self.session
        return {"name": s.name, "model_id": s.model_id, "codec_id": s.codec_id, "is_random": bool(s.is_random),
                "device": str(s.device), "threads": self.threads, "codec_threads": self.codec_threads,
                "host": socket.gethostname(), "pid": os.getpid()}

    def codes(self, requests: Sequence[GenerationRequest], batch_size: int
              ) -> tuple[list[tuple[np.ndarray, bool]], float]:
        """Each request's audio codes (codebooks, frames) and whether the model ended it (the first
        half of `ModelSession.generate`), with the seconds this took here."""
        from higgs_cli.engine.model.delay import generated_codes

        started = time.perf_counter()
        made = self.session.generate_frames(requests, batch_size=batch_size)
        return [(generated_codes(frames), bool(finished)) for frames, finished in made], time.perf_counter() - started

    def decode_group(self, batch: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float]:
        """Decode clips together, as one batch of `ModelSession.decode_many` (equal-length clips)."""
        started = time.perf_counter()
        with self._codec_threads():
            audio = self.session.decode_many(list(batch), batch_size=max(1, len(batch)))
        return audio, time.perf_counter() - started

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        with self._codec_threads():
            return self.session.encode_audio(audio)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        with self._codec_threads():
            return self.session.decode(codes)

    def stream(self, request: GenerationRequest, chunk_frames: int) -> Iterator[np.ndarray]:
        # one request, decoded as it generates: all of it with the codec's threads, as a local stream
        with self._codec_threads():
            # a loop, not `yield from`: Ray's streaming calls send() on what it delegates to
            for chunk in self.session.stream(request, chunk_frames=chunk_frames):  # noqa: UP028
                yield chunk

    def _codec_threads(self):
        """The codec's thread count for the duration (generation's after)."""
        from higgs_cli.engine.model.placement import cpu_threads_set

        return cpu_threads_set(self.codec_threads)

