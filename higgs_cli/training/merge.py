"""`higgs voice merge NAME -o DIR`: the base checkpoint with voice NAME's adapter merged into it, a
folder transformers (and `--model DIR`) loads as is. Torch-free at import."""

from __future__ import annotations

from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.voices.adapter import find_adapter


def merge_voice(name: str, out: Path, model_dir: Path, *, dtype: str | None = None, force: bool = False,
                library=None) -> dict:
    """Write the merged checkpoint; what was written."""
    from higgs_cli.voices.library import VoiceLibrary

    voice = (library or VoiceLibrary()).get(name)
    adapter = find_adapter(voice.path)
    if adapter is None:
        raise UsageError(f"voice '{name}' has no trained adapter to merge",
                         hint=f"train one with `higgs voice train {name} DATA`")
    out = Path(out)
    if out.exists() and not force:
        raise UsageError(f"{out} already exists", hint="choose another folder, or add --force to replace it")
    if out.resolve().is_relative_to(Path(model_dir).resolve()) or Path(model_dir).resolve().is_relative_to(
            out.resolve()):
        raise UsageError(f"{out} overlaps the base checkpoint {model_dir}", hint="write the merged one elsewhere")
    from higgs_cli.engine.training.merge import merge_checkpoint

    merge_checkpoint(Path(model_dir), adapter.path, out, dtype=dtype)
    return {"voice": name, "adapter": adapter.digest, "base": str(model_dir), "out": str(out)}
