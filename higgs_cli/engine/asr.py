"""Speech recognition for the quality guards: a transformers Whisper pipeline on a local checkpoint.

Loaded once per render, at the first line checked (project/guards_asr.py); it
never reaches the network: a folder is used as it is, a model name only from
the local Hugging Face cache.
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


def _local_folder(source: str) -> str:
    """`source` as a folder: itself, or a model name's snapshot in the local cache (no network)."""
    if Path(source).is_dir():
        return source
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return snapshot_download(source, local_files_only=True)
    except (LocalEntryNotFoundError, HFValidationError, OSError, ValueError):
        raise UsageError(f"guards.asr_model: {source} is neither a folder nor in the local model cache",
                         hint=_HINT) from None


def load_transcriber(source: str, device: str | None = None) -> Callable[[np.ndarray, int], str]:
    """A function (audio, sample rate) -> text, backed by `pipeline("automatic-speech-recognition")`."""
    import torch
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = _local_folder(source)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        asr = pipeline("automatic-speech-recognition", model=folder, device=device)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"guards.asr_model: {source} could not be loaded as a speech-recognition model "
                         f"({type(error).__name__}: {error})", hint=_HINT) from None
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
