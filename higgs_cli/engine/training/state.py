"""A run's checkpoints on disk: everything `--resume` needs to go on as if never stopped.

    RUN/checkpoints/step-000050/   adapter_model.safetensors, adapter_config.json (peft's layout),
                                   trainer.pt (LoRA weights, optimizer, random states, micro-batch),
                                   progress.json (step, curves, best validation, the run's identity)
    RUN/best/                      the adapter with the lowest validation loss so far, and its progress.json

Each folder is written beside its place and renamed into it (`fsutil.atomic_dir`), so a kill at any
moment leaves the previous checkpoint whole. The data order and the learning rate are functions of
the step (`order.py`, `settings.learning_rate_at`): nothing of them needs saving.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from higgs_cli.engine.training.lora import save_adapter, trainable
from higgs_cli.fsutil import atomic_dir

CHECKPOINTS = "checkpoints"
BEST = "best"
PROGRESS = "progress.json"
TRAINER = "trainer.pt"
KEEP = 2  # checkpoints kept: the newest two (the newest may be the one a kill interrupted... never: atomic)


@dataclass
class Progress:
    """Where a run stands; written with every checkpoint."""

    identity: dict  # what must match to resume: settings, data digest, base model
    step: int = 0  # optimizer steps done
    curve: list[list[float]] = field(default_factory=list)  # [step, training loss]
    validation: list[list[float]] = field(default_factory=list)  # [step, validation loss]
    best_step: int | None = None
    best_loss: float | None = None
    bad_evals: int = 0  # evaluations since the best
    micro_batch: int | None = None  # after out-of-memory halvings
    seconds: float = 0.0  # training time so far

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def random_states() -> dict:
    name, keys, position, has_gauss, gauss = np.random.get_state()
    # plain values and tensors only: a checkpoint is read back with torch.load(weights_only=True)
    states = {"torch": torch.get_rng_state(), "python": random.getstate(),
              "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss)}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(run: Path, model, optimizer, progress: Progress) -> Path:
    """Write step `progress.step`'s checkpoint atomically; drop all but the newest KEEP."""
    target = run / CHECKPOINTS / f"step-{progress.step:06d}"
    with atomic_dir(target) as tmp:
        save_adapter(model, tmp)
        weights = {name: p.detach().cpu().clone() for name, p in trainable(model).items()}
        torch.save({"weights": weights, "optimizer": optimizer.state_dict(), "random": random_states()},
                   tmp / TRAINER)
        (tmp / PROGRESS).write_text(progress.to_json(), encoding="utf-8")
    for old in checkpoints(run)[:-KEEP]:
        import shutil

        shutil.rmtree(old, ignore_errors=True)
    return target


def save_best(run: Path, model, progress: Progress) -> None:
    with atomic_dir(run / BEST) as tmp:
        save_adapter(model, tmp)
        (tmp / PROGRESS).write_text(progress.to_json(), encoding="utf-8")


def checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a folder without its progress file is no checkpoint)."""
    folder = run / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and p.name.startswith("step-") and (p / PROGRESS).is_file() and (p / TRAINER).is_file())


def read_progress(folder: Path) -> Progress:
    return Progress(**json.loads((folder / PROGRESS).read_text(encoding="utf-8")))


def load_checkpoint(folder: Path, model, optimizer) -> Progress:
    """Put a checkpoint's weights, optimizer and random states back; its Progress."""
    saved = torch.load(folder / TRAINER, map_location="cpu", weights_only=True)
    params = trainable(model)
    with torch.no_grad():
        for name, value in saved["weights"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(saved["optimizer"])
    restore_random(saved["random"])
    return read_progress(folder)
