"""A voice's trained LoRA adapter: `adapter/` in the voice's folder, in peft's layout, with the run's
training manifest. Torch-free (the engine applies the weights).

    <voice>/adapter/adapter_model.safetensors   the LoRA matrices (peft's names)
    <voice>/adapter/adapter_config.json         peft's LoraConfig (rank, alpha, targets)
    <voice>/adapter/training.json               the training manifest (data digest, base model, settings,
                                                curves, time): `higgs_cli/training/manifest.py`

The adapter's digest (sha256 over its two peft files) names it in the render cache's keys, so a line
rendered with an adapter is never taken for one rendered without it, or with another.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from higgs_cli.fsutil import read_capped

ADAPTER_DIR = "adapter"
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
MANIFEST = "training.json"
ADAPTER_FILES = (WEIGHTS, CONFIG, MANIFEST)
"""What a voice archive carries of an adapter (as `<voice>/adapter/<file>`)."""
MAX_MANIFEST_BYTES = 8 << 20


@dataclass(frozen=True)
class VoiceAdapter:
    path: Path  # the adapter folder
    digest: str  # sha256 of its weights and config: part of every cache key of a line spoken with it

    def manifest(self) -> dict | None:
        """The training manifest, or None when absent or unreadable (an adapter trained elsewhere)."""
        from higgs_cli import untrusted

        try:
            data = untrusted.loads(read_capped(self.path / MANIFEST, MAX_MANIFEST_BYTES, what=MANIFEST)
                                   .decode("utf-8"))
        except Exception:  # noqa: BLE001 - a manifest is informative only: a bad one is shown as missing
            return None
        return data if isinstance(data, dict) else None


def adapter_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in (CONFIG, WEIGHTS):
        digest.update(name.encode() + b"\0")
        with open(folder / name, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def find_adapter(voice_folder: Path) -> VoiceAdapter | None:
    """The voice's adapter, or None when it has none (both peft files must be there)."""
    folder = voice_folder / ADAPTER_DIR
    if not ((folder / WEIGHTS).is_file() and (folder / CONFIG).is_file()):
        return None
    return VoiceAdapter(folder, adapter_digest(folder))


def copy_adapter(source: Path, voice_folder: Path, manifest: dict | None = None) -> None:
    """Put the peft files of `source` (and `manifest`, else source's own) as `voice_folder`'s adapter."""
    target = voice_folder / ADAPTER_DIR
    target.mkdir(exist_ok=True)
    for name in (WEIGHTS, CONFIG):
        shutil.copy2(source / name, target / name)
    if manifest is not None:
        (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    elif (source / MANIFEST).is_file():
        shutil.copy2(source / MANIFEST, target / MANIFEST)


def move_adapter(source_voice: Path, target_voice: Path) -> None:
    """Move a staged voice's adapter folder into the folder replacing the installed voice (import)."""
    if (source_voice / ADAPTER_DIR).is_dir():
        os.replace(source_voice / ADAPTER_DIR, target_voice / ADAPTER_DIR)


def describe(adapter: VoiceAdapter) -> dict:
    """What `voice show` says of an adapter: its digest, LoRA settings and the training run's figures."""
    from higgs_cli import untrusted

    info: dict = {"path": str(adapter.path), "digest": adapter.digest}
    try:
        config = untrusted.loads(read_capped(adapter.path / CONFIG, MAX_MANIFEST_BYTES, what=CONFIG).decode("utf-8"))
        info.update(rank=config.get("r"), alpha=config.get("lora_alpha"), targets=config.get("target_modules"))
    except Exception:  # noqa: BLE001 - shown without its settings; the engine reports a bad config when it loads
        pass
    manifest = adapter.manifest() or {}
    for key in ("trained", "steps_done", "final_loss", "best_step", "best_validation_loss", "kept", "seconds",
                "data", "base_model", "loss_curve", "validation_curve"):
        if key in manifest:
            info[key] = manifest[key]
    return info


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """A curve in one line of block characters (at most `width`, evenly sampled)."""
    if not values:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - low) / span * len(SPARKS)))] for v in values)
