"""The in-place Snake activation (engine/model/snake.py) against transformers' own module: the same bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.models.dac.modeling_dac import Snake1d

from higgs_cli.engine.model.snake import InPlaceSnake, use_in_place_snakes


@pytest.mark.parametrize("shape", [(1, 8, 4000), (3, 16, 250), (2, 4, 10, 7)])
def test_in_place_snake_gives_transformers_bits(shape):
    torch.manual_seed(0)
    reference = Snake1d(shape[1])
    reference.alpha.data = torch.rand_like(reference.alpha) * 3 + 0.05
    x = torch.randn(shape) * 4
    with torch.inference_mode():
        expected = reference(x)
        got = InPlaceSnake(reference.alpha)(x.clone())
    assert got.shape == x.shape
    assert torch.equal(got, expected)


def test_the_input_is_left_alone():
    snake = InPlaceSnake(torch.nn.Parameter(torch.full((1, 2, 1), 0.7)))
    x = torch.randn(1, 2, 50)
    before = x.clone()
    with torch.inference_mode():
        snake(x)
    assert torch.equal(x, before)


def test_the_sessions_codec_decodes_and_encodes_as_transformers_does(tiny_session):
    """Every Snake1d of the audio tokenizer is swapped, and its codes and samples are unchanged."""
    from transformers import HiggsAudioV2TokenizerModel

    codec = tiny_session.codec
    assert not any(type(m) is Snake1d for m in codec.model.modules())
    assert sum(type(m) is InPlaceSnake for m in codec.model.modules()) > 0
    reference = HiggsAudioV2TokenizerModel.from_pretrained(tiny_session.files.audio_tokenizer_dir,
                                                           dtype=torch.float32).eval()
    assert use_in_place_snakes(torch.nn.Sequential()) == 0
    codes = np.random.default_rng(0).integers(0, codec.model.config.codebook_size, (codec.num_codebooks, 40))
    with torch.inference_mode():
        expected = reference.decode(torch.as_tensor(codes)[None], return_dict=True).audio_values[0, 0].numpy()
    assert np.array_equal(codec.decode(codes), expected)
    audio = np.random.default_rng(1).standard_normal(24_000).astype(np.float32) * 0.1
    inputs = codec.feature_extractor(audio, sampling_rate=24_000, return_tensors="pt")
    with torch.inference_mode():
        expected_codes = reference.encode(inputs["input_values"], return_dict=True).audio_codes[0].numpy()
    assert np.array_equal(codec.encode(audio), expected_codes)
