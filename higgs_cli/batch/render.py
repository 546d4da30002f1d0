"""Render a batch of rows on one session: `higgs say --input-file FILE --output-dir DIR`.

    batch = prepare_batch(read_rows(...), Path("out"), BatchSettings(...))   # no model
    summary = render_batch(batch, session)                                   # generate, write

Each row's output is valid only for its recipe: a key over the model, the
text, the voice, the scene, the seed, the sampling and the format, recorded in
`manifest.json`. A rerun skips the rows whose file is there with the key and
checksum recorded, so an interrupted batch resumes where it stopped. The
manifest is rewritten (atomically) after each generated chunk, once its files
are written, and last of all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from higgs_cli import untrusted
from higgs_cli.batch.rows import BatchInput, BatchRow
from higgs_cli.engine.api import DEFAULT_BATCH_SIZE, Session
from higgs_cli.engine.request import DEFAULT_MAX_SECONDS, DEFAULT_SEED, RANDOM_WEIGHTS_NOTE, SAMPLE_RATE, Sampling
from higgs_cli.engine.text import normalize_text
from higgs_cli.errors import AudioError, HiggsError, UsageError, ValidationError
from higgs_cli.fsutil import atomic_write_text, exclusive_lock, file_sha256, resolve_inside, sweep_temporaries
from higgs_cli.speech import build_request, check_sampling, voice_turn
from higgs_cli.voices.reference_turn import ResolvedVoice, VoiceChoice, reference_text, resolve_choice

MANIFEST = "manifest.json"
LOCK = ".higgs-batch.lock"
RECIPE_VERSION = 1  # bump when what a key covers changes: every row renders again


@dataclass(frozen=True)
class BatchSettings:
    """The command's defaults for every row (a row's own voice, scene, seed, format win)."""

    voice: VoiceChoice | None = None
    scene: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    seed: int = DEFAULT_SEED
    max_seconds: float = DEFAULT_MAX_SECONDS
    format: str = "wav"
    force: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE


@dataclass(frozen=True)
class Batch:
    """Rows checked, voices resolved, the output folder checked: ready for a session."""

    input: BatchInput
    output_dir: Path
    settings: BatchSettings
    voices: dict[str | None, ResolvedVoice | None]  # a row's voice name (None: the default) -> voice
    voice_ids: dict[str | None, str | None]  # the same -> what identifies it in a recipe


def _check_output_dir(folder: Path) -> None:
    from higgs_cli.storage.urls import looks_like_url, unfolded

    if looks_like_url(folder):  # gs://b/out is not a local folder named gs:, and is shown as written
        raise UsageError(f"--output-dir {unfolded(folder)}: rows are written to a local folder, not a URL",
                         hint="give a local folder (and copy it to the bucket afterwards)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output-dir {folder} is a file", hint="give a folder (it is created if missing)")
    if not folder.exists() and not folder.parent.is_dir():
        raise UsageError(f"--output-dir {folder}: folder {folder.parent} does not exist",
                         hint="create it first, or choose another folder")


def _voice_id(voice: ResolvedVoice, library) -> str:
    """What of a voice shapes a row's prompt: its recording and its transcript as the prompt carries it."""
    transcript = reference_text(voice.transcript)
    if voice.library_name is not None:
        from higgs_cli.voices.library import VoiceLibrary

        entry = (library or VoiceLibrary()).get(voice.library_name)
        return f"library:{entry.name}:{entry.audio_sha256}:{transcript}"
    import numpy as np

    audio = np.ascontiguousarray(voice.audio, dtype=np.float32)
    return f"file:{hashlib.sha256(audio.tobytes()).hexdigest()}:{transcript}"


def prepare_batch(batch_input: BatchInput, output_dir: Path | str, settings: BatchSettings, library=None) -> Batch:
    """Every check that needs no model: settings, the output folder, and each row's voice."""
    output_dir = Path(output_dir)
    check_sampling(settings.sampling, seed=settings.seed, max_seconds=settings.max_seconds)
    _check_output_dir(output_dir)
    voices: dict[str | None, ResolvedVoice | None] = {None: resolve_choice(settings.voice, library)
                                                      if settings.voice else None}
    problems = []
    for row in batch_input.rows:
        if row.voice is None or row.voice in voices:
            continue
        if any(sep in row.voice for sep in "/\\") or "." in row.voice:
            problems.append(f"{batch_input.where}:{row.line}: voice {row.voice!r} must be the name of a library "
                            "voice (`higgs voice add NAME FILE --transcript ...` adds one)")
            continue
        try:
            voices[row.voice] = resolve_choice(VoiceChoice(row.voice), library)
        except HiggsError as error:
            problems.append(f"{batch_input.where}:{row.line}: {error.message}")
    if problems:
        raise ValidationError(f"{batch_input.where}: {len(problems)} row(s) name a voice that cannot be used; "
                              "nothing was written", problems, hint="see `higgs voice list`")
    ids = {name: _voice_id(voice, library) if voice else None for name, voice in voices.items()}
    return Batch(batch_input, output_dir, settings, voices, ids)


@dataclass(frozen=True)
class RowPlan:
    row: BatchRow
    file: str  # name inside the output folder
    voice: str | None  # key into Batch.voices
    scene: str | None
    seed: int
    key: str


def _plan(batch: Batch, model_id: str, codec_id: str) -> list[RowPlan]:
    settings = batch.settings
    plans = []
    for row in batch.input.rows:
        voice = row.voice
        scene = row.scene if row.scene is not None else settings.scene
        seed = row.seed if row.seed is not None else settings.seed
        fmt = row.format or settings.format
        recipe = {"v": RECIPE_VERSION, "model": model_id, "codec": codec_id, "text": normalize_text(row.text),
                  "voice": batch.voice_ids[voice], "scene": scene.strip() if scene else None, "seed": seed,
                  "sampling": settings.sampling.to_dict(), "max_seconds": settings.max_seconds, "format": fmt}
        key = hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        plans.append(RowPlan(row, f"{row.stem}.{fmt}", voice, scene, seed, key))
    return plans


def _read_manifest(folder: Path) -> dict[str, dict]:
    """The rows a previous run recorded, by file name; nothing when there is no readable manifest."""
    try:
        data = untrusted.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return {entry["file"]: entry for entry in data.get("rows", []) if isinstance(entry, dict) and
                isinstance(entry.get("file"), str) and entry.get("status") in ("generated", "skipped")}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _is_done(folder: Path, plan: RowPlan, old: dict | None) -> bool:
    if old is None or old.get("key") != plan.key or not (folder / plan.file).is_file():
        return False
    return file_sha256(folder / plan.file) == old.get("sha256")  # a file edited or cut short is not done


@dataclass
class BatchSummary:
    """What a batch did: one entry per row, in input order."""

    input: str
    output_dir: str
    model: str
    random_weights: bool
    rows: list[dict]

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row["status"] == status)

    def to_dict(self) -> dict:
        data = {"input": self.input, "output_dir": self.output_dir, "manifest": str(Path(self.output_dir) / MANIFEST),
                "rows": len(self.rows), "generated": self.count("generated"), "skipped": self.count("skipped"),
                "failed": self.count("failed"), "model": self.model, "random_weights": self.random_weights,
                "seconds": round(sum(row.get("seconds") or 0 for row in self.rows), 3)}
        if self.random_weights:
            data["warning"] = RANDOM_WEIGHTS_NOTE
        return {**data, "files": self.rows}


def _write_manifest(folder: Path, summary: BatchSummary, entries: dict[str, dict], plans: list[RowPlan]) -> None:
    rows = [entries[p.file] for p in plans if p.file in entries]
    data = {"version": 1, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "input": summary.input, "model": summary.model, "random_weights": summary.random_weights, "rows": rows}
    atomic_write_text(folder / MANIFEST, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _entry(plan: RowPlan, status: str, **extra) -> dict:
    row = plan.row
    return {"row": row.number, "line": row.line, "id": row.id, "file": plan.file, "text": row.text,
            "voice": plan.voice, "scene": plan.scene, "seed": plan.seed, "key": plan.key, "status": status, **extra}


def render_batch(batch: Batch, session: Session, *, progress: Callable[[int], None] | None = None) -> BatchSummary:
    """Generate the rows whose output is missing or stale, `batch_size` at a time, on `session`."""
    folder = batch.output_dir
    made = not folder.exists()
    folder.mkdir(exist_ok=True)
    try:
        with exclusive_lock(folder / LOCK, what=f"output folder {folder}"):
            return _render_locked(batch, session, progress)
    except BaseException:
        if made:  # failed before its first row (the session did not open): no empty folder left behind
            _remove_if_only_lock(folder)
        raise


def _remove_if_only_lock(folder: Path) -> None:
    try:
        if {entry.name for entry in folder.iterdir()} <= {LOCK}:
            (folder / LOCK).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:  # someone else's file appeared, or the folder went: leave it
        pass


def _render_locked(batch: Batch, session: Session, progress: Callable[[int], None] | None) -> BatchSummary:
    folder = batch.output_dir
    sweep_temporaries(folder)  # what a batch killed outright (SIGKILL) left half-written
    plans = _plan(batch, session.model_id, session.codec_id)  # a LazySession loads nothing for these
    for plan in plans:  # ids are checked as names; this also refuses a link planted where a row goes
        resolve_inside(folder, plan.file, what="row output")
    old = {} if batch.settings.force else _read_manifest(folder)
    foreign = [p.file for p in plans if (folder / p.file).exists() and p.file not in old]
    if foreign and not batch.settings.force:
        raise UsageError(f"{folder} already holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, "
                         f"which no batch manifest there lists; refusing to overwrite",
                         hint="use --force to replace them, or choose another --output-dir")
    summary = BatchSummary(batch.input.where, str(folder), session.name, bool(session.is_random), [])
    entries: dict[str, dict] = {}
    todo = []
    for plan in plans:
        if _is_done(folder, plan, old.get(plan.file)):
            kept = {k: old[plan.file].get(k) for k in ("seconds", "frames", "finished", "sha256")}
            entries[plan.file] = _entry(plan, "skipped", **kept)
        else:
            todo.append(plan)
    turns = {}
    size = max(1, batch.settings.batch_size)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        for plan in chunk:
            if plan.voice not in turns:
                voice = batch.voices[plan.voice]
                turns[plan.voice] = voice_turn(voice, session) if voice else None
        requests = [build_request(p.row.text, voice=turns[p.voice], scene=p.scene, seed=p.seed,
                                  sampling=batch.settings.sampling, max_seconds=batch.settings.max_seconds)
                    for p in chunk]
        results = session.generate(requests, batch_size=size, progress=progress)
        for plan, result in zip(chunk, results, strict=True):
            entries[plan.file] = _write_row(folder, plan, result)
        _write_manifest(folder, summary, entries, plans)
    summary.rows = [entries[p.file] for p in plans]
    _write_manifest(folder, summary, entries, plans)
    return summary


def _write_row(folder: Path, plan: RowPlan, result) -> dict:
    from higgs_cli.audio.io import write_audio

    facts = {"seconds": round(len(result.audio) / SAMPLE_RATE, 3), "frames": result.frames,
             "finished": result.finished}
    try:
        write_audio(folder / plan.file, result.audio)
    except AudioError as error:  # one unusable line (empty audio) does not sink the rest
        return _entry(plan, "failed", error=error.message, **facts)
    return _entry(plan, "generated", sha256=file_sha256(folder / plan.file), **facts)
