"""Each clip's audio codes, encoded once: a content-addressed cache keyed by the clip's resampled
audio and the codec's identity, so later runs (and every epoch) never run the codec again."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from higgs_cli.errors import ModelError
from higgs_cli.voices.codes import CodesCache, valid_codes

KEY_VERSION = b"higgs-train-codes-1"  # change when the key's ingredients change
ENCODE_CHUNK = 32  # clips encoded (and cached) per call: an interrupted run keeps what it encoded


def codes_key(audio: np.ndarray, codec_id: str) -> str:
    """sha256 over the 24 kHz mono float32 samples and the audio tokenizer's fingerprint."""
    h = hashlib.sha256(KEY_VERSION + b"\0" + codec_id.encode("utf-8") + b"\0")
    h.update(np.ascontiguousarray(audio, dtype="<f4").tobytes())
    return h.hexdigest()


def encode_clips(clips: Sequence[np.ndarray], session, cache_dir: Path) -> tuple[list[np.ndarray], int]:
    """(codebooks, frames) codes for each clip, from the cache or encoded by `session` (and cached),
    and how many distinct clips the codec encoded. A session that is not loaded yet (a lazy one)
    loads only when a clip misses the cache."""
    cache = CodesCache(cache_dir)
    keys = [codes_key(clip, session.codec_id) for clip in clips]
    found: dict[str, np.ndarray] = {}
    missing: dict[str, int] = {}  # key -> the first clip with it
    for index, key in enumerate(keys):
        if key in found or key in missing:
            continue
        cached = cache.get(key)
        if cached is not None:
            found[key] = cached
        else:
            missing[key] = index
    todo = list(missing.items())
    for start in range(0, len(todo), ENCODE_CHUNK):
        chunk = todo[start:start + ENCODE_CHUNK]
        for (key, _), codes in zip(chunk, _encode(session, [clips[index] for _, index in chunk]), strict=True):
            codes = np.asarray(codes)
            if not valid_codes(codes):
                raise ModelError(f"the audio tokenizer returned unusable codes (shape {codes.shape}, "
                                 f"dtype {codes.dtype})")
            cache.put(key, codes)
            found[key] = codes
    books = {found[key].shape[0] for key in keys}
    if len(books) > 1:
        raise ModelError(f"the cached codes have different codebook counts ({sorted(books)}) for one codec",
                         hint=f"remove the cache folder {cache_dir} and prepare again")
    return [found[key] for key in keys], len(todo)


def _encode(session, clips: list[np.ndarray]) -> list[np.ndarray]:
    """`session.encode_many` where the session has it (a local model: equal lengths in one pass),
    else `encode_audio` clip by clip (the `Session` protocol's member)."""
    try:
        many = session.encode_many  # a lazy session loads its model here, once a clip is missing
    except AttributeError:
        return [session.encode_audio(clip) for clip in clips]
    return list(many(clips))
