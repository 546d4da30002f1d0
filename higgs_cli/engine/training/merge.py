"""A full checkpoint with a voice's adapter merged into its weights (`higgs voice merge`), in the
layout transformers loads as is: the base checkpoint's files (tokenizer, processor, audio tokenizer,
chat template) with the merged model's config and weights in place of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

from higgs_cli.fsutil import atomic_dir

WEIGHT_FILES = ("*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json")


DTYPES = ("bf16", "fp16", "fp32")


def merge_checkpoint(model_dir: Path, adapter_dir: Path, out: Path, *, dtype: str | None = None) -> None:
    """Write `model_dir` with `adapter_dir` merged to `out` (one rename at the end: never half-written).
    The merge is done in float32; the weights are stored in `dtype`, by default the base's own."""
    import torch
    from transformers import HiggsAudioV2ForConditionalGeneration

    from higgs_cli.engine.training.lora import adapter_deltas

    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(model_dir, use_safetensors=True,
                                                                 dtype=torch.float32)
    # W + scaling * B @ A, as peft's merge_and_unload computes it (tests/engine/test_adapter_use.py
    # holds the two equal), from the adapter's safetensors only
    with torch.no_grad():
        for name, delta in adapter_deltas(adapter_dir, model).items():
            model.get_submodule(name).weight.add_(delta)
    named = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    stored = named[dtype] if dtype else next(iter(_stored_dtypes(model_dir)), torch.float32)
    with atomic_dir(out) as tmp:
        skip = {p.name for pattern in WEIGHT_FILES for p in model_dir.glob(pattern)}
        for item in model_dir.iterdir():
            if item.name in skip or item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name, symlinks=False)
            else:
                shutil.copy2(item, tmp / item.name)
        model.to(stored).save_pretrained(tmp, safe_serialization=True)


def _stored_dtypes(model_dir: Path):
    """The number type the base checkpoint's weights are stored in (the merged one keeps it)."""
    import torch
    from safetensors import safe_open

    names = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                yield names.get(handle.get_slice(key).get_dtype(), torch.float32)
                return
