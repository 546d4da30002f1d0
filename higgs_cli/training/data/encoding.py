"""Each clip's audio codes, encoded once: a content-addressed cache keyed by the clip's resampled
audio and the codec's identity, so later runs (and every epoch) never run the codec again."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from higgs_cli.errors import ModelError
from higgs_cli.voices.codes import CodesCache, valid_codes

KEY_VERSION = b"higgs-train-codes-1"  # change when the key's ingredients change
ENCODE_CHUNK = 32  # clips held for one encoding call: memory stays bounded, an interrupted run keeps its codes


def codes_key(audio: np.ndarray, codec_id: str) -> str:
    """sha256 over the 24 kHz mono float32 samples and the audio tokenizer's fingerprint."""
    h = hashlib.sha256(KEY_VERSION + b"\0" + codec_id.encode("utf-8") + b"\0")
    h.update(np.ascontiguousarray(audio, dtype="<f4").tobytes())
    return h.hexdigest()


class CodesEncoder:
    """Clips in (`add`), their (codebooks, frames) codes out (`finish`): from the cache, or encoded by
    `session` ENCODE_CHUNK clips at a time and cached at once, so only those clips are held in memory.

    A session that is not loaded yet (a lazy one) loads only when a clip misses the cache; each
    distinct clip is encoded once; `encoded` counts them."""

    def __init__(self, session, cache_dir: Path, *, chunk: int | None = None) -> None:
        self.session = session
        self.cache = CodesCache(cache_dir)
        self.cache_dir = cache_dir
        self.chunk = chunk or ENCODE_CHUNK
        self.encoded = 0
        self._keys: list[str] = []  # one per clip added
        self._codes: dict[str, np.ndarray] = {}
        self._pending: dict[str, np.ndarray] = {}  # key -> audio, waiting for the codec

    def add(self, audio: np.ndarray) -> None:
        key = codes_key(audio, self.session.codec_id)
        self._keys.append(key)
        if key in self._codes or key in self._pending:
            return
        cached = self.cache.get(key)
        if cached is not None:
            self._codes[key] = cached
            return
        self._pending[key] = audio
        if len(self._pending) >= self.chunk:
            self._flush()

    def finish(self) -> list[np.ndarray]:
        """The codes of every clip added, in order."""
        self._flush()
        books = {self._codes[key].shape[0] for key in self._keys}
        if len(books) > 1:
            raise ModelError(f"the cached codes have different codebook counts ({sorted(books)}) for one codec",
                             hint=f"remove the cache folder {self.cache_dir} and prepare again")
        return [self._codes[key] for key in self._keys]

    def _flush(self) -> None:
        if not self._pending:
            return
        keys = list(self._pending)
        for key, codes in zip(keys, _encode(self.session, list(self._pending.values())), strict=True):
            codes = np.asarray(codes)
            if not valid_codes(codes):
                raise ModelError(f"the audio tokenizer returned unusable codes (shape {codes.shape}, "
                                 f"dtype {codes.dtype})")
            self.cache.put(key, codes)
            self._codes[key] = codes
        self.encoded += len(keys)
        self._pending.clear()


def _encode(session, clips: list[np.ndarray]) -> list[np.ndarray]:
    """`session.encode_many` where the session has it (a local model: equal lengths in one pass),
    else `encode_audio` clip by clip (the `Session` protocol's member)."""
    try:
        many = session.encode_many  # a lazy session loads its model here, once a clip is missing
    except AttributeError:
        return [session.encode_audio(clip) for clip in clips]
    return list(many(clips))
