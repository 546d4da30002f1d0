"""The render cache: one file per generated line, named by a hash of everything
that shapes its audio, so an unchanged line is never generated twice.

Entries live in the project's cache folder (`ProjectLayout.cache_dir`), one
`<key>.npz` each (codes, audio, finished, and a JSON `meta`: what the line heard,
the guards' flags, tries and seed).

A key covers the line's own request only, not the lines it hears
(`PlannedLine.context_from`): editing one chunk of a narration generates that
chunk alone. Which audio a line heard is recorded in its entry's meta
(`heard`: the digests of the context entries' codes), so status can show the
lines whose context changed since, and `render --refresh-context` redo them.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from higgs_cli.engine.request import GenerationRequest, GenerationResult
from higgs_cli.fsutil import atomic_path
from higgs_cli.plugins.task import PlannedLine
from higgs_cli.project.layout import ProjectLayout

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project

SUFFIX = ".npz"  # one file per entry: <key>.npz
KEY_VERSION = 3  # bump when the key's recipe or the generation semantics change
# 3: the key no longer holds the keys of the lines a line hears (edit locality, issue 17)


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


def line_recipe(request: GenerationRequest, *, model_id: str, codec_id: str) -> dict:
    """Everything of one request that shapes its audio: what its key is a digest of."""
    history = [{"text": turn.text,
                "codes": array_digest(turn.codes) if turn.codes is not None else None,
                "audio": array_digest(turn.audio) if turn.codes is None else None,
                # a trained voice's adapter (only then: the keys of lines without one are unchanged)
                **({"adapter": turn.adapter.digest} if turn.adapter is not None else {})}
               for turn in request.history]
    return {
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
    }


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def line_key(request: GenerationRequest, *, model_id: str, codec_id: str) -> str:
    """The cache key of one request: sha256 over a canonical JSON of its own inputs.

    The lines it hears at render time are not part of it (see the module's note).
    """
    return _digest(line_recipe(request, model_id=model_id, codec_id=codec_id))


# The recipe's fields in the groups a producer changes: why a line's key changed, by name. Every field of
# line_recipe is in one group (tests/project/editing/test_line_reasons.py checks it).
RECIPE_PARTS = {"read": ("text",), "voice": ("history",), "scene": ("scene", "system"),
                "sampling": ("sampling", "max_frames"), "seed": ("seed",), "model": ("v", "model_id", "codec_id")}


def described_voices(project: Project) -> list[str]:
    """The speakers' descriptions (a described voice is spoken through the scene text): what
    `recipe_parts` counts as the voice, not the scene, where the scene holds it."""
    return sorted({spk.description.strip() for spk in project.speakers.values() if spk.description
                   and spk.description.strip()}, key=len, reverse=True)


def recipe_parts(line: PlannedLine, request: GenerationRequest | None = None, *, model_id: str,
                 codec_id: str, voices: Sequence[str] = ()) -> dict[str, str]:
    """Short digests of each part of a line's recipe (`request`, else its own), and of its text as shown:
    what a cache entry's meta records (`recipe`) so that status can name what changed since. The
    `voices` (described_voices) found in the scene or system prompt count as the voice, not the scene."""
    recipe = line_recipe(request or line.request, model_id=model_id, codec_id=codec_id)
    prompts = [recipe["scene"] or "", recipe["system"] or ""]
    described = [v for v in voices if v and any(v in text for text in prompts)]
    for v in described:  # longest first: a description inside another is not cut out of it
        prompts = [text.replace(v, "") for text in prompts]
    parts = {name: _digest([recipe[f] for f in fields])[:16] for name, fields in RECIPE_PARTS.items()}
    parts["voice"] = _digest([recipe["history"], described])[:16]
    parts["scene"] = _digest(prompts)[:16]
    return {"text": _digest(line.display_text)[:16], **parts}


def recipe_changes(before: dict, now: dict) -> list[str]:
    """What differs between two `recipe_parts`, by name: text (the words shown), lexicon (only the words
    the model reads), voice, scene, sampling, seed, model. Parts `before` lacks are not compared."""
    changed = [name for name in ("text", "voice", "scene", "sampling", "seed", "model")
               if name in before and before[name] != now.get(name)]
    if "text" not in changed and "read" in before and before["read"] != now.get("read"):
        changed.insert(0, "lexicon")
    return changed


def line_keys(planned: Sequence[PlannedLine], context: Sequence[tuple[int, ...]] | None = None, *, model_id: str,
              codec_id: str) -> list[str]:
    """The key of every planned line (`context` is accepted for older callers and not used)."""
    return [line_key(line.request, model_id=model_id, codec_id=codec_id) for line in planned]


def codes_digest(codes: np.ndarray) -> str:
    """What `heard` records of a context line: a short digest of its codes."""
    return array_digest(np.asarray(codes, dtype=np.int16))[:20]


@dataclass(frozen=True)
class CacheEntry:
    codes: np.ndarray
    audio: np.ndarray
    finished: bool
    meta: dict = field(default_factory=dict)  # heard, flags, tries, seed (see Store.put)

    def as_result(self) -> GenerationResult:
        return GenerationResult(codes=self.codes, audio=self.audio, finished=self.finished)


class Store:
    """The content-addressed cache of one project."""

    def __init__(self, project_root: str | os.PathLike) -> None:
        self.dir = ProjectLayout(project_root).cache_dir

    def path(self, key: str) -> Path:
        return self.dir / f"{key}{SUFFIX}"

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
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
                entry = CacheEntry(codes=np.array(data["codes"]), audio=np.array(data["audio"], dtype=np.float32),
                                   finished=bool(data["finished"]), meta=meta if isinstance(meta, dict) else {})
            if entry.codes.ndim != 2 or entry.audio.ndim != 1:
                raise ValueError("bad shapes")
            return entry
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)
            return None

    def meta(self, key: str) -> dict | None:
        """Only the entry's meta (its audio is not read), or None when there is no readable entry."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        return meta if isinstance(meta, dict) else {}

    def put(self, key: str, result: GenerationResult, meta: dict | None = None) -> dict:
        """Cache `result` under `key` with its `meta` (JSON data: `heard`, the digests of the codes of
        the lines it heard; `digest`, its own codes' digest; the guards' `flags`, `tries`, `seed`);
        return the meta as written."""
        self.dir.mkdir(parents=True, exist_ok=True)
        codes = np.asarray(result.codes, dtype=np.int16)
        meta = {**(meta or {}), "digest": codes_digest(codes)}
        with atomic_path(self.path(key), suffix=SUFFIX) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, codes=codes, audio=np.asarray(result.audio, dtype=np.float32),
                     finished=np.bool_(result.finished), meta=np.array(json.dumps(meta, sort_keys=True)))
        return meta

    def clear(self) -> bool:
        if not self.dir.exists():
            return False
        shutil.rmtree(self.dir)
        return True
