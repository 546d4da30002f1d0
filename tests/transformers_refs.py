"""Transformers' own path for the differential tests (engine parity, `say --temperature 0`): the processor's
inputs for a request, and greedy `generate()` codes."""

from __future__ import annotations

import numpy as np

from higgs_cli.engine.model.prompt import messages_for
from higgs_cli.engine.request import GenerationRequest


def hf_inputs(processor, request: GenerationRequest, audios: list[np.ndarray]):
    messages = messages_for(request)
    audio_iter = iter(audios)
    for message in messages:
        if message["role"] == "assistant":
            message["content"] = [{"type": "audio", "audio": next(audio_iter)}]
    return processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True,
                                         sampling_rate=24000, return_tensors="pt")


def hf_generated(model, inputs, steps: int) -> np.ndarray:
    out = model.generate(**inputs, do_sample=False, max_new_tokens=steps, return_dict_in_generate=True)
    reference_frames = inputs["audio_input_ids"].shape[1] if "audio_input_ids" in inputs else 0
    return out.audio_sequences[0, reference_frames:].numpy()
