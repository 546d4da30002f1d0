"""The bf16 CPU forward: grouped attention against sdpa, and packed weights against plain ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from higgs_cli.engine.model.forward import Runner, StaticCache, additive_mask, attend_grouped
from higgs_cli.engine.model.placement import cpu_has_bf16

# bit-for-bit claims hold for the kernels of CPUs with bf16 units, where bf16 is the default;
# elsewhere torch emulates bf16 with other kernels
native_bf16 = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 units")


def test_grouped_attention_equals_sdpa_with_masks_and_shared_heads():
    """q heads share kv heads (GQA), rows have their own masks; fp32 within rounding, bf16 close."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(3, 8, 5, 16, generator=gen)
    keys, values = torch.randn(2, 3, 2, 17, 16, generator=gen)
    visible = torch.rand(3, 1, 5, 17, generator=gen) > 0.3
    visible[..., 0] = True  # every query sees at least one key
    mask = additive_mask(visible, torch.float32)
    expected = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=0.25, enable_gqa=True)
    assert torch.allclose(attend_grouped(q, keys, values, mask, 0.25), expected, atol=1e-5)
    low = attend_grouped(q.bfloat16(), keys.bfloat16(), values.bfloat16(), mask.bfloat16(), 0.25)
    assert low.dtype == torch.bfloat16 and (low.float() - expected).abs().max() < 0.05


def _bf16_runner(tiny_model, packed: bool) -> Runner:
    from transformers import HiggsAudioV2ForConditionalGeneration

    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.bfloat16).eval()
    return Runner(model, column_major=False, packed=packed)


@native_bf16
def test_packed_weights_give_the_plain_weights_bits_in_prefill_and_decode(tiny_model):
    """oneDNN's packed layout changes no bit of a bf16 prefill or decode step, for 1 row or several,
    and the plain copies are freed (the modules' weights emptied)."""
    plain, packed = _bf16_runner(tiny_model, False), _bf16_runner(tiny_model, True)
    if not packed.packed:
        pytest.skip("this torch cannot pack bf16 weights for oneDNN")
    attn = packed.layers[0].self_attn
    assert attn.q_proj.weight.numel() == 0 and attn.o_proj.weight.numel() == 0
    assert packed.parameter_count == plain.parameter_count > 0
    config = plain.config
    gen = torch.Generator().manual_seed(1)
    rows = [(slot, torch.randint(0, 200, (n,), generator=gen), torch.zeros(0, config.num_codebooks,
                                                                           dtype=torch.long), 0)
            for slot, n in ((0, 9), (1, 4), (2, 13))]
    frames = torch.randint(0, 1024, (3, config.num_codebooks), generator=gen)
    lengths = torch.tensor([9, 4, 13])
    outputs = []
    for runner in (plain, packed):
        cache = StaticCache(config, 3, 64, torch.bfloat16, torch.device("cpu"))
        first = runner.prefill_many(cache, rows)
        steps = [runner.decode(cache, lengths, frames), runner.decode(cache.head(1), lengths[:1], frames[:1])]
        outputs.append([first, *steps])
    for a, b in zip(*outputs):
        assert torch.equal(a, b)


@native_bf16
def test_a_bf16_decode_step_gives_the_same_bits_over_a_slice_or_the_whole_cache(tiny_model):
    """On CPU in bf16 a step reads the whole cache once its rows fill half of it (a slice would be
    copied first); the masked positions change no bit of the logits."""
    runner = _bf16_runner(tiny_model, True)
    config = runner.config
    gen = torch.Generator().manual_seed(2)
    cache = StaticCache(config, 2, 64, torch.bfloat16, torch.device("cpu"))
    no_audio = torch.zeros(0, config.num_codebooks, dtype=torch.long)
    runner.prefill_many(cache, [(0, torch.randint(0, 200, (11,), generator=gen), no_audio, 0),
                                (1, torch.randint(0, 200, (6,), generator=gen), no_audio, 0)])
    lengths, frames = torch.tensor([11, 6]), torch.randint(0, 1024, (2, config.num_codebooks), generator=gen)
    sliced = runner.decode(cache, lengths, frames, span=12)
    whole = runner.decode(cache, lengths, frames, span=40)  # 2 x 40 >= 64: reads all 64 positions
    assert torch.equal(sliced, whole)
