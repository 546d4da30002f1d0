"""The takes of each line: their record (`.higgs/takes.json`) and their audio files
(`build/takes/<line>/take-<k>.wav`, ProjectLayout.take_audio).

    {"intro:2": {"text": "5d41402abc4b", "own_seed": 1041,
                 "takes": [{"take": 1, "seed": 105770, "key": "<cache key>", "seconds": 2.2,
                            "finished": true, "model_id": "...", "flags": []}]}}

A line's record holds the digest of the text its takes were made for (`lockfile.text_digest`, the
digest a pick holds by). Takes of other text are never listed, and `prune_takes` (run by `takes
--count`, `pick` and every render, under the project lock) drops their record and removes their
files. `project clean` drops them all (`drop_takes`). The audio of a take lives in the cache under
its key; the file is that audio as a stem is written (DC-free, trimmed), to listen to.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from higgs_cli.fsutil import atomic_path, atomic_write_text, read_json, resolve_inside
from higgs_cli.project.layout import ProjectLayout, line_folder

_KEY = re.compile(r"[0-9a-f]{64}")  # a cache key (store.line_key)


def read_takes(layout: ProjectLayout) -> dict[str, dict]:
    """Every line's record, by line name; records that are not ours are left out."""
    data = read_json(layout.takes_file) or {}
    return {name: record for name, record in data.items()
            if isinstance(record, dict) and isinstance(record.get("takes"), list)}


def line_record(layout: ProjectLayout, name: str, text: str) -> dict | None:
    """The record of the line `name` when its takes were made for the text digest `text`, else None."""
    record = read_takes(layout).get(name)
    return record if record is not None and record.get("text") == text else None


def valid_takes(record: dict | None) -> list[dict]:
    """The record's takes that are well formed (a number and a seed each); a `key` that is not a cache
    key is None (the file is anyone's to edit, and a pick copies the key into the lock file)."""
    found = []
    for take in (record or {}).get("takes", []):
        if not (isinstance(take, dict) and type(take.get("take")) is int and type(take.get("seed")) is int):
            continue
        key = take.get("key")
        found.append({**take, "key": key if isinstance(key, str) and _KEY.fullmatch(key) else None})
    return found


def write_takes(layout: ProjectLayout, data: Mapping[str, dict]) -> None:
    """Write the record (atomically). Call while holding the project lock."""
    layout.higgs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(layout.takes_file, json.dumps(dict(data), indent=1, sort_keys=True) + "\n")


def take_file(layout: ProjectLayout, name: str, take: int) -> Path:
    """The take's audio file, checked to lie inside the project through no symbolic link."""
    where = layout.take_audio(name, take)
    return resolve_inside(layout.root, where.relative_to(layout.root), what="take file")


def write_take_audio(layout: ProjectLayout, name: str, take: int, audio: np.ndarray, *, trim: bool = True) -> Path:
    """Write a take's audio as its stem would be (DC-free, trimmed when the project trims), atomically."""
    from higgs_cli.audio.cleanup import remove_dc
    from higgs_cli.audio.io import write_audio
    from higgs_cli.audio.master import trim_silence

    target = take_file(layout, name, take)
    clip = remove_dc(np.asarray(audio, dtype=np.float32))
    if trim:
        trimmed = trim_silence(clip)
        clip = trimmed if trimmed.size else clip  # an all-silent take keeps its length
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        write_audio(tmp, clip)
    return target


def _remove_folder(layout: ProjectLayout, folder: Path) -> bool:
    """Remove one line's folder of takes (never through a link); whether it was there."""
    where = resolve_inside(layout.root, folder.relative_to(layout.root), what="takes folder")
    if not where.is_dir():
        return False
    shutil.rmtree(where)
    return True


def prune_takes(layout: ProjectLayout, current: Mapping[str, str]) -> list[str]:
    """Drop the takes made for other text: every record whose line is not in `current` (line name ->
    its text digest now) with that digest, and its files. Returns the names dropped. Call while
    holding the project lock."""
    data = read_takes(layout)
    dropped = [name for name, record in data.items() if current.get(name) != record.get("text")]
    for name in dropped:
        del data[name]
        _remove_folder(layout, layout.takes_dir / line_folder(name))
    if dropped:
        write_takes(layout, data)
    return dropped


def drop_takes(layout: ProjectLayout) -> list[str]:
    """Remove every take: the record and the files (`project clean`). Returns what was removed."""
    removed = []
    if layout.takes_file.is_file():
        layout.takes_file.unlink()
        removed.append(str(layout.takes_file))
    if layout.takes_dir.exists() and _remove_folder(layout, layout.takes_dir):
        removed.append(str(layout.takes_dir))
    return removed
