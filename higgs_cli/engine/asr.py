"""Speech recognition for the quality guards: a transformers Whisper pipeline on a local checkpoint.

Loaded once per render, at the first line checked (project/building/guards_asr.py); it
never reaches the network: a folder is used as it is, a model name only from
the local Hugging Face cache. Which device it runs on is the render's choice
(guards_asr.asr_device); an explicit one is checked here before any line is made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from higgs_cli.errors import UsageError

MAX_NEW_TOKENS = 200  # a 30 s line is well under 200 tokens; a random model stops here
CHUNK_SECONDS = 30  # Whisper hears 30 s at a time: longer lines are transcribed in chunks
_HINT = ("give a local Whisper checkpoint folder as guards.asr_model (download one first, e.g. "
         "`hf download openai/whisper-small --local-dir whisper`), or remove it to turn speech recognition off")


def local_folder(source: str, *, what: str = "guards.asr_model", hint: str = _HINT) -> str:
    """`source` as a folder: itself, or a model name's snapshot in the local cache (no network);
    a UsageError naming `what` (the setting or option that gave it) otherwise."""
    if Path(source).is_dir():
        return source
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(source, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        raise UsageError(f"{what}: {source} is neither a folder nor in the local model cache", hint=hint) from None


def check_device(requested: str, *, what: str = "guards.asr_model") -> str:
    """`requested` (a --device value) as a device name, or a UsageError when this machine lacks it.

    Speech recognition runs in this process even when the model is a server's, so a device the user
    asked for must exist here; checked before the first line is generated, not after it."""
    import torch

    where = f"speech recognition ({what}) runs in this process"
    fix = "use --device cpu, or leave --device out (speech recognition then runs on the CPU)"
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device '{requested}'", hint="use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {requested} was asked for, but this machine has no CUDA GPU ({where})",
                             hint=fix)
        if device.index is not None and device.index >= count:
            raise UsageError(f"--device {requested} was asked for, but this machine has {count} CUDA GPU(s) "
                             f"(cuda:0 to cuda:{count - 1}; {where})", hint=fix)
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {requested} was asked for, but MPS is not available here ({where})", hint=fix)
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unknown device '{requested}'", hint="use cpu, cuda, cuda:N or mps")
    return str(device)


def _pipeline(folder: str, device: str):
    """transformers' speech-recognition pipeline on `device` (one seam, so tests can see the device)."""
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=folder, device=device)


def load_transcriber(source: str, device: str | None = None, *, what: str = "guards.asr_model",
                     hint: str = _HINT) -> Callable[[np.ndarray, int], str]:
    """A function (audio, sample rate) -> text, backed by `pipeline("automatic-speech-recognition")`,
    on `device` (a torch device name; None: the CPU, never a GPU the render did not choose).
    `what` and `hint` name the setting that gave `source` in errors (`guards.asr_model`, `--asr-model`)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = local_folder(source, what=what, hint=hint)
    try:
        asr = _pipeline(folder, device or "cpu")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{what}: {source} could not be loaded as a speech-recognition model "
                         f"({type(error).__name__}: {error})", hint=hint) from None
    rate = int(asr.feature_extractor.sampling_rate)
    room = int(getattr(asr.model.config, "max_target_positions", 448)) - 4  # the decoder's prompt tokens
    max_new = max(1, min(MAX_NEW_TOKENS, room))

    def transcribe(audio: np.ndarray, sample_rate: int) -> str:
        audio = np.asarray(audio, dtype=np.float32)
        if sample_rate != rate:
            import soxr

            audio = soxr.resample(audio, sample_rate, rate).astype(np.float32)
        extra = {"chunk_length_s": CHUNK_SECONDS} if len(audio) > CHUNK_SECONDS * rate else {}
        with torch.inference_mode():
            out = asr({"raw": audio, "sampling_rate": rate}, generate_kwargs={"max_new_tokens": max_new}, **extra)
        return str(out.get("text", "")).strip()

    return transcribe
