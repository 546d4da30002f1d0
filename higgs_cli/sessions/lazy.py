"""A model session that loads only when a line must be generated or a voice encoded.

Cache keys need only the model's and the audio tokenizer's fingerprints, which
are read from the checkpoint's files (`identity.model_identity`) without loading
any weights. So a render whose lines are all cached (a title, pause or loudness
change) re-assembles the build without waiting for the model.

    session = LazySession(lambda: ModelSession.load(name), model_identity(name))
    render_project(project, session)   # loads the model only if a line is missing
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import CHUNK_FRAMES, GenerationRequest, GenerationResult
from higgs_cli.errors import HiggsError
from higgs_cli.sessions.identity import ModelIdentity


class LazySession:
    """Stands for a session: its identity is known now, `load()` runs on first real use.

    Without an identity, asking for `model_id` or `codec_id` loads the model.
    Once loaded, the session must have the identity it was announced with.

    Every member of `engine.api.Session` is defined on this class, so that
    `isinstance(lazy, Session)` finds them without `__getattr__` loading the
    model (on Python 3.12+, and on older ones once the identity is known:
    their protocol check reads the identity properties).
    """

    def __init__(self, load: Callable[[], Any], identity: ModelIdentity | None = None) -> None:
        self._load = load
        self._identity = identity
        self._session: Any = None

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> Any:
        """The real session, loaded on first use."""
        if self._session is None:
            session = self._load()
            known = self._identity
            if known is not None and (session.model_id, session.codec_id) != (known.model_id, known.codec_id):
                raise HiggsError(f"the model {known.name} changed on disk while it was loading "
                                 f"(fingerprint {known.model_id}, loaded {session.model_id})", hint="render again")
            self._session = session
        return self._session

    def load(self) -> Any:
        """Load the model now (if it is not loaded yet); return the real session."""
        return self.session

    @property
    def identity(self) -> ModelIdentity:
        if self._identity is None:
            self._identity = ModelIdentity.of(self.session)
        return self._identity

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def model_id(self) -> str:
        return self.identity.model_id

    @property
    def codec_id(self) -> str:
        return self.identity.codec_id

    @property
    def is_random(self) -> bool:
        return self.identity.is_random

    # The members of engine.api.Session, with its signatures, each loading the model first.

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int], None] | None = None) -> list[GenerationResult]:
        return self.session.generate(requests, batch_size=batch_size, progress=progress)

    def stream(self, request: GenerationRequest, *, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
        return self.session.stream(request, chunk_frames=chunk_frames)

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        return self.session.encode_audio(audio)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.session.decode(codes)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.session, name)  # anything else a caller needs is the real session's


def as_session(session: Any) -> Any:
    """A session object from a session, a LazySession, or a zero-argument factory of one (a
    function or a class): sessions are not callable, so nothing of a real session is probed."""
    if isinstance(session, LazySession) or not callable(session):
        return session
    return LazySession(session)
