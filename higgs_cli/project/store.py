"""The render cache: one file per generated line, named by a hash of everything
that shapes its audio, so an unchanged line is never generated twice.

Entries live in the project's cache folder (`ProjectLayout.cache_dir`), one
`<key>.npz` each (codes, audio, finished).
They are written through a temporary file and one rename, so a reader sees a
whole entry or none; an unreadable entry counts as a miss and is replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from higgs_cli.engine.request import GenerationRequest, GenerationResult
from higgs_cli.fsutil import atomic_path
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.layout import ProjectLayout

KEY_VERSION = 2  # bump when the key's recipe or the generation semantics change


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's shape, kind and values (codes compare by value, not dtype)."""
    array = np.ascontiguousarray(array)
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    elif array.dtype.kind == "f":
        array = array.astype(np.float32)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def line_key(request: GenerationRequest, *, model_id: str, codec_id: str,
             context_keys: Sequence[str] = ()) -> str:
    """The cache key of one request: sha256 over a canonical JSON of its inputs.

    `context_keys` are the keys of the lines whose audio is appended to this
    request's history at render time (PlannedLine.context_from): editing one
    chunk changes the keys of every chunk that hears it.
    """
    history = [{"text": turn.text,
                "codes": array_digest(turn.codes) if turn.codes is not None else None,
                "audio": array_digest(turn.audio) if turn.codes is None else None}
               for turn in request.history]
    recipe = {
        "v": KEY_VERSION,
        "model_id": model_id,
        "codec_id": codec_id,
        "system": request.system,
        "scene": request.scene,
        "history": history,
        "text": request.text,
        "sampling": request.sampling.to_dict(),
        "seed": request.seed,
        "max_frames": request.max_frames,
        "context": list(context_keys),
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def line_keys(planned: Sequence[PlannedLine], context: Sequence[tuple[int, ...]], *, model_id: str,
              codec_id: str) -> list[str]:
    """The key of every planned line; `context` is each line's project-wide context (plan.global_context)."""
    keys: list[str] = []
    for line, deps in zip(planned, context, strict=True):
        keys.append(line_key(line.request, model_id=model_id, codec_id=codec_id,
                             context_keys=[keys[j] for j in deps]))
    return keys


@dataclass(frozen=True)
class CacheEntry:
    codes: np.ndarray
    audio: np.ndarray
    finished: bool

    def as_result(self) -> GenerationResult:
        return GenerationResult(codes=self.codes, audio=self.audio, finished=self.finished)


class Store:
    """The content-addressed cache of one project."""

    def __init__(self, project_root: str | os.PathLike) -> None:
        self.dir = ProjectLayout(project_root).cache_dir

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.npz"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def mtime(self, key: str) -> float | None:
        try:
            return self.path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    def get(self, key: str) -> CacheEntry | None:
        """The entry, or None when absent or unreadable (an unreadable one is removed)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                entry = CacheEntry(codes=np.array(data["codes"]), audio=np.array(data["audio"], dtype=np.float32),
                                   finished=bool(data["finished"]))
            if entry.codes.ndim != 2 or entry.audio.ndim != 1:
                raise ValueError("bad shapes")
            return entry
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None

    def put(self, key: str, result: GenerationResult) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(key), suffix=".npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, codes=np.asarray(result.codes, dtype=np.int16),
                     audio=np.asarray(result.audio, dtype=np.float32), finished=np.bool_(result.finished))

    def clear(self) -> bool:
        if not self.dir.exists():
            return False
        shutil.rmtree(self.dir)
        return True
