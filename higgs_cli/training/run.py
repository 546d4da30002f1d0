"""`higgs voice train NAME DATA`: prepare the data, train a LoRA adapter, store it with the voice.

Torch-free at import; the trainer (`higgs_cli.engine.training`) is imported inside `train_voice`.
Every utterance is trained in the prompt the voice speaks a line with: the voice's reference turn,
then the utterance's text (normalized as a line's text is) and its audio. The run's checkpoints live
in the user data folder (`training_runs_dir()/NAME`), so `--resume` finds them after a kill; the
voice library changes only at the end, in one swap (`VoiceLibrary.set_adapter`): a run interrupted
at any moment leaves the voice as it was.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from higgs_cli.engine.request import GenerationRequest
from higgs_cli.engine.text import normalize_text
from higgs_cli.engine.training.settings import TrainSettings
from higgs_cli.home import training_codes_dir, training_runs_dir
from higgs_cli.voices.adapter import find_adapter

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class TrainOutcome:
    voice: str
    adapter_digest: str
    manifest: dict
    report: object  # the data's PrepareReport
    stopped_early: bool
    resumed_from: int | None
    run_dir: Path

    def to_dict(self) -> dict:
        summary = {k: self.manifest[k] for k in ("steps_done", "final_loss", "best_validation_loss", "best_step",
                                                  "seconds", "rows_per_second", "audio_seconds_per_second")}
        return {"voice": self.voice, "adapter": self.adapter_digest, "stopped_early": self.stopped_early,
                "resumed_from": self.resumed_from, "run": str(self.run_dir), **summary,
                "data": self.manifest["data"]}


def training_items(examples, reference) -> list:
    """(request, (K, T) codes) per example: the line's prompt after the voice's reference turn."""
    return [(GenerationRequest(text=normalize_text(example.text), history=(reference,)), example.codes.T)
            for example in examples]


def train_voice(name: str, data: str | Path, settings: TrainSettings, session, model_dir: Path, *,
                resume: bool = False, validation_fraction: float = 0.1, device: str | None = None,
                dtype: str | None = None, recognizer=None, library=None,
                on_event: Callable[[str, dict], None] | None = None) -> TrainOutcome:
    """Train voice `name` of the library on DATA and store the adapter with it."""
    from higgs_cli.engine.training.trainer import Trainer, load_base
    from higgs_cli.training.data import prepare_data
    from higgs_cli.voices.library import VoiceLibrary
    from higgs_cli.voices.reference_turn import library_voice, reference_turn

    library = library or VoiceLibrary()
    voice = library.get(name)  # before anything slow: a voice that is not there is said at once
    emit = on_event or (lambda kind, data: None)
    emit("phase", {"what": f"preparing {data}"})
    prepared = prepare_data(data, session, cache_dir=training_codes_dir(), validation_fraction=validation_fraction,
                            seed=settings.seed, recognizer=recognizer)
    reference = reference_turn(library_voice(name, library), codec_id=session.codec_id, encode=session.encode_audio,
                               library=library)
    run = training_runs_dir() / name
    if not resume and run.exists():
        shutil.rmtree(run)  # a fresh run: the old one's checkpoints would otherwise be resumed later
    identity = {"data": prepared.digest, "model": session.model_id, "voice": voice.audio_sha256,
                "transcript": voice.transcript}
    emit("phase", {"what": "loading the model for training"})
    model, tokenizer = load_base(model_dir, device, dtype)
    trainer = Trainer(model, tokenizer, training_items(prepared.train, reference),
                      training_items(prepared.validation, reference), settings, run, identity, emit)
    started = time.time()
    result = trainer.train(resume=resume)
    progress = result.progress
    manifest = {
        "format": MANIFEST_VERSION,
        "voice": name,
        "trained": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": {"source": str(data), "digest": prepared.digest, "train_clips": len(prepared.train),
                 "validation_clips": len(prepared.validation),
                 "train_minutes": round(sum(e.seconds for e in prepared.train) / 60, 3)},
        "base_model": {"name": str(session.name), "model_id": session.model_id, "codec_id": session.codec_id},
        "settings": settings.to_dict(),
        "micro_batch_used": progress.micro_batch,
        "steps_done": progress.step,
        "final_loss": progress.curve[-1][1] if progress.curve else None,
        "best_step": progress.best_step,
        "best_validation_loss": progress.best_loss,
        "kept": "best validation loss" if result.adapter.name == "best" else "last step",
        "loss_curve": progress.curve,
        "validation_curve": progress.validation,
        "seconds": round(progress.seconds, 3),
        "wall_seconds_this_run": round(time.time() - started, 3),
        "rows_per_second": round(result.rows_per_second, 4),
        "audio_seconds_per_second": round(result.audio_seconds_per_second, 4),
    }
    stored = library.set_adapter(name, result.adapter, manifest)
    adapter = find_adapter(stored.path)
    return TrainOutcome(name, adapter.digest if adapter else "", manifest, prepared.report, result.stopped_early,
                        result.resumed_from, run)
