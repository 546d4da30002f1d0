"""Training rows in the prompt the engine speaks a line with, and batches of them as transformers reads them.

A row is the generation prompt of one line (system, scene, the voice's reference turn, the line's
text; `model/prompt.py`) followed by the assistant's answer: the utterance's audio, delayed, between
`<|audio_out_bos|>` and `<|audio_eos|>`. That is the conversation transformers' processor renders
with `apply_chat_template(..., output_labels=True)`; its audio labels are the delayed frames with
stream BOS and EOS masked (-100). Only the answer is labelled here: a reference clip in the prompt is
context, not something to learn (the processor would label it too; `label_history=True` does that).
No torch at import: `collate` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from higgs_cli.engine.model.delay import STREAM_BOS, STREAM_EOS, build_delay_pattern
from higgs_cli.engine.model.prompt import expand_audio_placeholders, messages_for
from higgs_cli.engine.request import GenerationRequest

IGNORE = -100
"""The label cross-entropy skips (transformers' `ignore_index`)."""


@dataclass(frozen=True)
class TrainingRow:
    input_ids: np.ndarray  # (L,) int64, one placeholder per delayed audio frame
    audio_frames: np.ndarray  # (A, K) every delayed frame of the row, in order (references, then the answer)
    audio_labels: np.ndarray  # (A, K) the frames to learn, IGNORE elsewhere
    frames: int  # the answer's (undelayed) frames: what a step trains on

    @property
    def tokens(self) -> int:
        return len(self.input_ids)


def build_row(request: GenerationRequest, history_codes: list[np.ndarray], codes: np.ndarray, tokenizer,
              num_codebooks: int, *, label_history: bool = False) -> TrainingRow:
    """One training row: `request`'s prompt (its history turns' (K, T) codes in `history_codes`) and the
    answer `codes` (K, T)."""
    delayed = [build_delay_pattern(c) for c in (*history_codes, codes)]
    messages = messages_for(request) + [{"role": "assistant", "content": [{"type": "audio", "url": "answer"}]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = tokenizer(expand_audio_placeholders(text, [len(d) for d in delayed], num_codebooks))["input_ids"]
    labels = [d.copy() if label_history or index == len(delayed) - 1 else np.full_like(d, IGNORE)
              for index, d in enumerate(delayed)]
    frames = np.concatenate(delayed).astype(np.int64)
    labelled = np.concatenate(labels).astype(np.int64)
    labelled[(labelled == STREAM_BOS) | (labelled == STREAM_EOS)] = IGNORE
    return TrainingRow(np.asarray(ids, dtype=np.int64), frames, labelled, int(codes.shape[1]))


def label_counts(rows: list[TrainingRow]) -> np.ndarray:
    """Labelled positions per codebook over `rows` (K,): what a global batch's loss is divided by."""
    return sum(((row.audio_labels != IGNORE).sum(0) for row in rows), np.zeros(rows[0].audio_frames.shape[1],
                                                                               dtype=np.int64))


def collate(rows: list[TrainingRow], pad_token_id: int) -> dict:
    """Right-padded tensors under transformers' argument names (`input_ids`, `attention_mask`,
    `audio_input_ids`, `audio_input_ids_mask`, `audio_labels`), as the processor pads them: text
    with the pad token, audio frames with stream EOS."""
    import torch

    length = max(row.tokens for row in rows)
    frames = max(len(row.audio_frames) for row in rows)
    codebooks = rows[0].audio_frames.shape[1]
    input_ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), length), dtype=torch.long)
    audio = torch.full((len(rows), frames, codebooks), STREAM_EOS, dtype=torch.long)
    audio_mask = torch.zeros((len(rows), frames), dtype=torch.bool)
    labels = torch.full((len(rows), frames, codebooks), IGNORE, dtype=torch.long)
    for index, row in enumerate(rows):
        input_ids[index, :row.tokens] = torch.from_numpy(row.input_ids)
        attention[index, :row.tokens] = 1
        count = len(row.audio_frames)
        audio[index, :count] = torch.from_numpy(row.audio_frames)
        audio_mask[index, :count] = True
        labels[index, :count] = torch.from_numpy(row.audio_labels)
    return {"input_ids": input_ids, "attention_mask": attention, "audio_input_ids": audio,
            "audio_input_ids_mask": audio_mask, "audio_labels": labels}
