"""A validated cache of audio codes: one .npy file per key in one folder.

A voice's reference recording is encoded by the model's audio tokenizer once
and kept, so planning again needs no model. Whatever is read back is checked
(a 2-D array of non-negative integers, as an encoder returns); a file that is
missing, unreadable or damaged counts as absent, and the codes encoded again
replace it in one rename. Used by the voice library (one folder per voice,
keyed by codec) and by projects (their own recordings, keyed by content and
codec); caching is best effort: a folder that cannot be written still gives
the codes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from higgs_cli.errors import HiggsError
from higgs_cli.fsutil import atomic_path

Encoder = Callable[[np.ndarray], np.ndarray]
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def valid_codes(codes: object) -> bool:
    """True for what an audio encoder returns: a non-empty (codebooks, frames) array of codes >= 0."""
    return (isinstance(codes, np.ndarray) and codes.ndim == 2 and codes.dtype.kind in "iu" and codes.size > 0
            and int(codes.min()) >= 0)


class CodesCache:
    """Audio codes cached as `<folder>/<key>.npy`."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """The cache file for `key`; ValueError for a key that cannot be a file name."""
        if not KEY_RE.fullmatch(key):
            raise ValueError(f"codes cache key {key!r} cannot be a file name")
        return self.folder / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached codes for `key`, or None when there are none or the file is damaged."""
        path = self.path(key)
        try:
            codes = np.load(path, allow_pickle=False)
        except Exception:  # any unreadable cache file is simply encoded again
            return None
        return codes if valid_codes(codes) else None

    def put(self, key: str, codes: np.ndarray) -> bool:
        """Store `codes` under `key` in one rename; False (and nothing changed) when it cannot be written."""
        path = self.path(key)
        with contextlib.suppress(OSError, HiggsError):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as handle:
                np.save(handle, codes, allow_pickle=False)
            return True
        return False

    def get_or_encode(self, key: str, load_audio: Callable[[], np.ndarray], encode: Encoder, *,
                      store: bool = True) -> np.ndarray:
        """The cached codes for `key`, else `encode(load_audio())`, checked and (with `store`) cached.

        `load_audio` is called only on a miss. ValueError when the encoder returns
        something that is not codes (nothing is cached then).
        """
        cached = self.get(key)
        if cached is not None:
            return cached
        codes = np.asarray(encode(load_audio()))
        if not valid_codes(codes):
            raise ValueError(f"the encoder returned unusable codes: shape {codes.shape}, dtype {codes.dtype}")
        if store:
            self.put(key, codes)
        return codes
