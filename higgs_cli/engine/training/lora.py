"""LoRA through peft: wrapping the base model, the trainable weights, and the adapter in peft's layout."""

from __future__ import annotations

from pathlib import Path

import torch

from higgs_cli.engine.training.settings import TrainSettings

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


def wrap(model, settings: TrainSettings):
    """`model` with LoRA on `settings.targets`; the base weights frozen. The LoRA matrices are drawn
    from torch's generator: seed it first for a reproducible run."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.targets), bias="none")
    return get_peft_model(model, config)


def trainable(model) -> dict[str, torch.Tensor]:
    """The weights training changes (the LoRA matrices), by name."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def save_adapter(model, folder: Path) -> None:
    """adapter_model.safetensors and adapter_config.json in `folder`, as peft writes them (what
    `PeftModel.from_pretrained` and other tools read)."""
    model.save_pretrained(str(folder), safe_serialization=True)


def adapter_deltas(folder: Path, model) -> dict[str, torch.Tensor]:
    """Each adapted module's weight change (scaling * B @ A), by its name in `model` (transformers'
    model), in float32, read from an adapter folder in peft's layout."""
    import json

    from safetensors.torch import load_file

    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scaling = alpha / (rank ** 0.5 if config.get("use_rslora") else rank)
    tensors = load_file(str(folder / ADAPTER_WEIGHTS))
    names = dict(model.named_modules())
    deltas = {}
    for key, down in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        stem = key.removesuffix(".lora_A.weight").removeprefix("base_model.model.")
        up = tensors[key.replace(".lora_A.", ".lora_B.")]
        if stem not in names:
            raise KeyError(f"the adapter changes {stem}, which this model does not have")
        deltas[stem] = (up.float() @ down.float()) * scaling
    return deltas
