"""A voice's adapter when it speaks: output with the adapter equals the merged checkpoint's (greedy),
a batch mixing rows with and without it equals each row alone, and the base weights come back exact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from higgs_cli.engine.request import GREEDY, Adapter, GenerationRequest, Turn
from higgs_cli.engine.session import ModelSession
from higgs_cli.engine.training.lora import save_adapter, wrap
from higgs_cli.engine.training.merge import merge_checkpoint
from higgs_cli.engine.training.settings import AUDIO_HEAD, DEFAULT_TARGETS, TrainSettings
from higgs_cli.engine.training.trainer import load_base
from higgs_cli.voices.adapter import adapter_digest


@pytest.fixture(scope="module")
def adapter_dir(tiny_model, tmp_path_factory):
    """A LoRA adapter with random (non-zero) B matrices: it changes what the model says."""
    torch.manual_seed(0)
    model, _ = load_base(tiny_model, "cpu", "fp32")
    lora = wrap(model, TrainSettings(rank=2, targets=DEFAULT_TARGETS + AUDIO_HEAD))
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("adapter")
    save_adapter(lora, folder)
    return folder


def test_an_adapter_speaks_as_the_merged_checkpoint(tiny_fp32_session, tiny_model, adapter_dir, tmp_path):
    session = tiny_fp32_session
    weights = {name: p.detach().clone() for name, p in session.model.named_parameters()}
    clip = np.sin(2 * np.pi * 200 * np.arange(24000) / 24000).astype(np.float32) * 0.3
    voice = Turn("A reference.", codes=session.encode_audio(clip))
    plain = GenerationRequest(text="Hello there.", history=(voice,), sampling=GREEDY, max_frames=16)
    trained = replace(plain, history=(replace(voice, adapter=Adapter(str(adapter_dir), adapter_digest(adapter_dir))),))
    assert trained.adapter is not None and plain.adapter is None
    [(base, _)] = session.generate_frames([plain])
    (with_adapter, _), (without, _) = session.generate_frames([trained, plain], batch_size=2)
    assert np.array_equal(without, base)
    assert not np.array_equal(with_adapter, base)
    for name, p in session.model.named_parameters():  # the base weights are back, bit for bit
        assert torch.equal(p, weights[name]), name

    merged = tmp_path / "merged"
    merge_checkpoint(tiny_model, adapter_dir, merged, dtype="fp32")
    from peft import PeftModel
    from transformers import HiggsAudioV2ForConditionalGeneration

    ours = HiggsAudioV2ForConditionalGeneration.from_pretrained(merged)  # transformers loads it as is
    base = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32)
    theirs = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    for name, value in theirs.state_dict().items():  # peft's own merge gives the same weights
        assert torch.allclose(ours.state_dict()[name], value, rtol=1e-6, atol=1e-7), name
    [(expected, _)] = ModelSession.load(str(merged), device="cpu", dtype="fp32").generate_frames([plain])
    assert np.array_equal(with_adapter, expected)
