"""Differential: training rows equal what transformers' processor makes with `output_labels=True`,
and the trainer's loss equals transformers' `model(**inputs).loss` on the same batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from higgs_cli.engine.model.prompt import messages_for
from higgs_cli.engine.request import GenerationRequest, Turn
from higgs_cli.engine.training.batch import IGNORE, build_row, collate, label_counts
from higgs_cli.engine.training.loss import batch_loss, loss_sums


def _clip(seconds: float, pitch: float, seed: int) -> np.ndarray:
    t = np.arange(int(24000 * seconds)) / 24000
    noise = np.random.default_rng(seed).normal(0, 0.05, t.size)
    return (0.3 * np.sin(2 * np.pi * pitch * t) + noise).astype(np.float32)


@pytest.fixture(scope="module")
def hf(tiny_model):
    from transformers import AutoProcessor, HiggsAudioV2ForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return processor, model


def _processor_inputs(processor, request: GenerationRequest, audios: list[np.ndarray]):
    messages = messages_for(request) + [{"role": "assistant", "content": [{"type": "audio"}]}]
    clips = iter(audios)
    for message in messages:
        if message["role"] == "assistant":
            message["content"] = [{"type": "audio", "audio": next(clips)}]
    return processor.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=False,
                                         sampling_rate=24000, return_tensors="pt", output_labels=True)


def test_rows_and_loss_equal_the_processor_and_transformers(tiny_fp32_session, hf):
    processor, model = hf
    session = tiny_fp32_session
    reference, answer = _clip(1.2, 220, 0), _clip(0.8, 330, 1)
    request = GenerationRequest(text="The sun rises in the east.", scene="A quiet room.",
                                history=(Turn("A tone for reference.", audio=reference),))
    expected = _processor_inputs(processor, request, [reference, answer])
    codes = [session.encode_audio(reference), session.encode_audio(answer)]
    row = build_row(request, codes[:1], codes[1], session.tokenizer, 8, label_history=True)
    assert row.input_ids.tolist() == expected["input_ids"][0].tolist()
    assert np.array_equal(row.audio_frames, expected["audio_input_ids"][0].numpy())
    assert np.array_equal(row.audio_labels, expected["audio_labels"][0].numpy())
    batch = collate([row], session.tokenizer.pad_token_id)
    with torch.no_grad():
        theirs = model(**expected).loss
        ours = batch_loss(model, batch)
    assert torch.allclose(ours, theirs, rtol=1e-5), (ours, theirs)

    # the default labels only the answer: the reference is context
    answer_only = build_row(request, codes[:1], codes[1], session.tokenizer, 8)
    assert (answer_only.audio_labels[:len(row.audio_frames) - len(codes[1][0]) - 9] == IGNORE).all()
    assert label_counts([answer_only]).tolist() == [codes[1].shape[1]] * 8


def test_a_padded_batch_has_transformers_loss(tiny_fp32_session, hf):
    _, model = hf
    session = tiny_fp32_session
    rows = [build_row(GenerationRequest(text=text), [], session.encode_audio(_clip(seconds, 200 + 50 * i, i)),
                      session.tokenizer, 8)
            for i, (text, seconds) in enumerate([("Short.", 0.5), ("A somewhat longer line of text.", 1.1)])]
    batch = collate(rows, session.tokenizer.pad_token_id)
    with torch.no_grad():
        theirs = model(**batch).loss
        sums, counts = loss_sums(model, batch)
    assert counts.tolist() == label_counts(rows).tolist()
    assert torch.allclose((sums / counts).sum(), theirs, rtol=1e-5), ((sums / counts).sum(), theirs)
