"""Requests -> token ids and reference-audio frames, in the model's chat format.

The chat template that ships with the checkpoint renders the messages; each
`<|AUDIO_OUT|>` placeholder is then expanded to one token per delayed audio
frame (the last K-1 of them the delay token), as transformers' processor does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from higgs_cli.engine.model.delay import build_delay_pattern
from higgs_cli.engine.request import GenerationRequest

AUDIO_OUT = "<|AUDIO_OUT|>"
DELAY = "<|reserved_special_token_6|>"


@dataclass
class Prompt:
    input_ids: np.ndarray  # (L,) int64, audio placeholders included
    audio_frames: np.ndarray  # (A, K) delayed reference frames, one per placeholder, in order
    prefix_len: int  # leading tokens shared by every line with the same system/scene/history

    @property
    def prefix_key(self) -> bytes:
        return self.input_ids[:self.prefix_len].tobytes() + self.audio_frames.tobytes()


def messages_for(request: GenerationRequest) -> list[dict]:
    """The chat messages for a request (system, scene, reference turns, the new line)."""
    def text(value: str) -> list[dict]:
        return [{"type": "text", "text": value}]

    messages = [{"role": "system", "content": text(request.system)}]
    if request.scene:
        messages.append({"role": "scene", "content": text(request.scene)})
    for turn in request.history:
        messages.append({"role": "user", "content": text(turn.text)})
        messages.append({"role": "assistant", "content": [{"type": "audio", "url": "reference"}]})
    messages.append({"role": "user", "content": text(request.text)})
    return messages


def expand_audio_placeholders(text: str, frame_counts: list[int], num_codebooks: int) -> str:
    """Replace the i-th AUDIO_OUT with frame_counts[i] placeholders, the last K-1 being delay tokens."""
    pieces = text.split(AUDIO_OUT)
    if len(pieces) - 1 != len(frame_counts):
        raise ValueError(f"prompt has {len(pieces) - 1} audio slots for {len(frame_counts)} clips")
    out = [pieces[0]]
    for count, piece in zip(frame_counts, pieces[1:]):
        out.append(AUDIO_OUT * (count - (num_codebooks - 1)) + DELAY * (num_codebooks - 1) + piece)
    return "".join(out)


def build_prompt(request: GenerationRequest, history_codes: list[np.ndarray], tokenizer,
                 num_codebooks: int) -> Prompt:
    """Render a request; `history_codes` holds each history turn's (K, T) codes."""
    frames = [build_delay_pattern(codes) for codes in history_codes]
    counts = [len(f) for f in frames]
    messages = messages_for(request)
    full = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=False)
    full_ids = tokenizer(expand_audio_placeholders(full, counts, num_codebooks))["input_ids"]
    prefix_ids = tokenizer(expand_audio_placeholders(prefix, counts, num_codebooks))["input_ids"]
    prefix_len = len(prefix_ids) if full_ids[:len(prefix_ids)] == prefix_ids else 0
    audio = np.concatenate(frames) if frames else np.zeros((0, num_codebooks), dtype=np.int64)
    return Prompt(np.asarray(full_ids, dtype=np.int64), audio.astype(np.int64), prefix_len)
