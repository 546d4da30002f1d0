"""What keys a session's lines: the model's name and the fingerprints of its files.

`ModelIdentity` is what a render records of its model; `model_identity` reads it
from a local checkpoint's files without loading any weights (and without torch).
Which session a command will use, and so whose identity keys its lines, is
`open.session_identity`'s to say.
"""

from __future__ import annotations

from dataclasses import dataclass

from higgs_cli.engine.api import Session
from higgs_cli.engine.request import RANDOM_WEIGHTS_NOTE
from higgs_cli.errors import ModelError, UsageError


@dataclass(frozen=True)
class ModelIdentity:
    """What a render records of its model, and what keys its lines."""

    name: str
    model_id: str
    codec_id: str
    is_random: bool = False

    @property
    def note(self) -> str | None:
        return RANDOM_WEIGHTS_NOTE if self.is_random else None

    @classmethod
    def of(cls, session: Session, name: str | None = None) -> ModelIdentity:
        """The identity of a session object (a ModelSession, a LazySession or a test double)."""
        return cls(name=name or session.name or session.model_id, model_id=session.model_id,
                   codec_id=session.codec_id, is_random=bool(session.is_random))


def model_identity(model: str | None = None, *, revision: str | None = None,
                   project_model: str | None = None) -> ModelIdentity | None:
    """The fingerprints of a checkpoint, read from its files; None when it cannot be found cheaply
    (not downloaded, offline, a bad path): then the loader itself says what is wrong."""
    from higgs_cli.engine import checkpoint  # torch-free: finding files and hashing them reads no weights

    name = checkpoint.resolve_model(model, project_model)
    try:
        files = checkpoint.locate(name, revision=revision)
        return ModelIdentity(name=name, model_id=checkpoint.fingerprint_folder(files.model_dir),
                             codec_id=checkpoint.fingerprint_folder(files.audio_tokenizer_dir),
                             is_random=files.is_random)
    except (ModelError, UsageError, OSError):
        return None
