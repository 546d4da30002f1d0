"""What the page shows, as JSON: the lines as `project status` judges them, the build's timeline,
the master's waveform peaks, the snapshots, and whether the project lock is held.

Everything is read without a model: `project_status` (states, approvals, picks, flags) and
`current_lines` (the text as the model reads it, after the lexicon) are the functions `status`,
`approve` and `takes` start from; the build's manifest places each line on the timeline.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from higgs_cli.errors import LockedError, UsageError
from higgs_cli.fsutil import read_capped
from higgs_cli.project import list_snapshots, project_status
from higgs_cli.project.building.review import REVIEW
from higgs_cli.project.folder.manifest import read_manifest
from higgs_cli.project.planning.current import current_lines

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.studio.state import Studio

PEAKS = 1200  # waveform columns, when the studio measures them itself
MAX_REVIEW_BYTES = 64 * 2**20
MAX_DECODED_SECONDS = 3600.0  # a master decoded for its peaks (no review page): longer ones draw none
_peaks_memo: dict[tuple[str, int, int], list[list[float]]] = {}


def lock_holder(studio: Studio) -> str | None:
    """None when the project lock is free now, else what holds it (the lock's own message)."""
    try:
        with studio.layout.lock("the project"):
            return None
    except LockedError as error:
        return error.message


def review_peaks(build: Path) -> list[list[float]] | None:
    """The master's peaks as the render measured them while writing it, from the data block of
    `build/review.html` (no audio decoded, whatever the book's length); None when unreadable."""
    from higgs_cli import untrusted

    try:
        text = read_capped(build / REVIEW, MAX_REVIEW_BYTES, what="review page").decode("utf-8")
        block = text.split('id="review-data">', 1)[1].split("</script>", 1)[0]
        found = untrusted.loads(block).get("peaks")
    except (OSError, ValueError, IndexError, AttributeError, UsageError):
        return None
    if not isinstance(found, list) or not all(isinstance(p, list) and len(p) == 2 and all(
            isinstance(v, (int, float)) and -1.0 <= v <= 1.0 for v in p) for p in found):
        return None
    return found


def peaks(path: Path, columns: int = PEAKS) -> list[list[float]]:
    """The lowest and highest sample of each of `columns` stretches of an audio file (numpy, memoized
    by path, size and modification time). The whole file is decoded: for a build without its page."""
    info = path.stat()
    memo = (str(path), info.st_size, info.st_mtime_ns)
    if memo not in _peaks_memo:
        from higgs_cli.audio.io import load_audio

        audio = np.asarray(load_audio(path, max_seconds=MAX_DECODED_SECONDS), dtype=np.float32).reshape(-1)
        n = max(1, min(columns, audio.size))
        edges = np.linspace(0, audio.size, n + 1).astype(np.int64)
        if audio.size:
            low = np.minimum.reduceat(audio, edges[:-1])
            high = np.maximum.reduceat(audio, edges[:-1])
        else:
            low = high = np.zeros(1, np.float32)
        _peaks_memo.clear()  # one master at a time is enough
        _peaks_memo[memo] = [[round(float(a), 3), round(float(b), 3)] for a, b in zip(low, high, strict=True)]
    return _peaks_memo[memo]


def _line_settings(project: Project, source: Any) -> dict:
    """The per-line keys the page can edit, as written (None: inherited). A section written as one
    `text:` is its own line: its scene is the section's (where yaml_edit writes it)."""
    if source is None:
        return {"scene": None, "seed": None, "pause": None}
    section = next((s for s in project.sections if any(line is source for line in s.lines)), None)
    single = section is not None and len(section.lines) == 1 and section.scene is not None
    return {"scene": source.scene or (section.scene if single else None), "seed": source.seed,
            "pause": source.pause}


def page_state(studio: Studio, *, probe_lock: bool = True) -> dict:
    """Everything the page draws, in one JSON-ready dict; `probe_lock`: say who holds the project lock."""
    sha = studio.sha()  # before reading: a file changed meanwhile is then refused as stale, never missed
    project = studio.project()
    report = project_status(project, tasks=studio.tasks)
    cur = current_lines(project, tasks=studio.tasks)
    build = report.build_dir
    manifest = read_manifest(build)
    placed = {line.ref: line for line in manifest.lines} if manifest is not None else {}
    names = {key: s.display_name for key, s in project.speakers.items() if s.display_name}
    lines = []
    for i, (state, planned) in enumerate(zip(report.lines, cur.planned, strict=True)):
        built = placed.get(state.ref)
        lines.append({
            "i": i, "ref": state.ref, "id": state.id, "name": cur.edits[i].name, "section": state.section,
            "speaker": state.speaker or "", "speaker_name": names.get(state.speaker or "", state.speaker or ""),
            "text": state.text, "spoken": planned.request.text, "state": state.state, "key": state.key,
            "cached": state.state in ("rendered", "stale"), "approved": state.approved,
            "changed_since_approval": state.changed_since_approval, "context_changed": state.context_changed,
            "take": state.take, "flags": [_flag(f) for f in state.flags], "tries": state.tries,
            "reasons": list(getattr(state, "reasons", []) or []),  # why the next render generates it
            "pick_changes": getattr(state, "pick_changes", None),  # a kept pick made under other settings
            "seed_used": planned.request.seed, **_line_settings(project, cur.refs.sources[i]),
            "start": round(built.start, 3) if built is not None and not built.missing else None,
            "end": round(built.end, 3) if built is not None and not built.missing else None,
            "stem": built.stem if built is not None else None})
    master = manifest.outputs.get("master") if manifest is not None else None
    master_path = build / master if isinstance(master, str) else None
    wave: list[list[float]] = []
    if master_path is not None and master_path.is_file() and _inside(master_path, studio.layout.default_build):
        wave = review_peaks(build) or []
        if not wave:
            with contextlib.suppress(Exception):  # an unreadable master draws no waveform; the page still works
                wave = peaks(master_path)
    titles = {s.id: (s.title or s.id) for s in project.sections}
    return {
        "title": project.title, "sha": sha, "lock": lock_holder(studio) if probe_lock else None,
        "build": {"current": report.outputs_current, "master": master if wave or master_path else None,
                  "duration": round(manifest.duration, 3) if manifest is not None else 0.0,
                  "rendered_at": manifest.rendered_at if manifest is not None else None,
                  "model": manifest.model if manifest is not None else None,
                  "is_random": bool(manifest.is_random) if manifest is not None else False,
                  "in_project": _inside(build, studio.layout.default_build)},
        "peaks": wave, "counts": report.counts(), "marks": report.marks(),
        "sections": [{"id": s.id, "title": titles[s.id], "start": _section_start(lines, s.id)}
                     for s in project.sections],
        "speakers": list(dict.fromkeys(line["speaker"] for line in lines)),
        "names": names, "lines": lines,
        "snapshots": [{"id": s["id"], "time": s.get("time"), "lines": s.get("lines"),
                       "generated": s.get("generated"), "duration": s.get("duration")}
                      for s in list_snapshots(project)][-20:],
        "model_loaded": studio.session_loaded(),
    }


def _flag(flag: Any) -> str:
    if not isinstance(flag, dict):
        return str(flag)
    kind = flag.get("code") or flag.get("kind") or "flag"
    message = flag.get("message") or ""
    return f"{kind}: {message}" if message else str(kind)


def _section_start(lines: list[dict], section: str) -> float | None:
    starts = [line["start"] for line in lines if line["section"] == section and line["start"] is not None]
    return min(starts) if starts else None


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False
