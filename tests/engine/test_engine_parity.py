"""Differential tests: the engine against transformers on the same random checkpoint."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers_refs import hf_generated, hf_inputs

from higgs_cli.engine.model.placement import cpu_has_bf16
from higgs_cli.engine.model.prompt import build_prompt
from higgs_cli.engine.request import GREEDY, GenerationRequest, Sampling, Turn
from higgs_cli.engine.session import ModelSession


@pytest.fixture(scope="module")
def reference_audio() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(24000 * 2) / 24000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 0.05, t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def hf(tiny_model):
    from transformers import AutoProcessor, HiggsAudioV2ForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return processor, model


def test_prompt_matches_the_processor(tiny_fp32_session, hf, reference_audio):
    processor, _ = hf
    request = GenerationRequest(text="The sun rises in the east.", scene="A quiet room.",
                                history=(Turn("A tone for reference.", audio=reference_audio),))
    inputs = hf_inputs(processor, request, [reference_audio])
    prompt = build_prompt(request, [tiny_fp32_session.encode_audio(reference_audio)], tiny_fp32_session.tokenizer, 8)
    assert prompt.input_ids.tolist() == inputs["input_ids"][0].tolist()
    assert np.array_equal(prompt.audio_frames, inputs["audio_input_ids"][0].numpy())
    assert 0 < prompt.prefix_len < len(prompt.input_ids)


@pytest.mark.parametrize("with_voice", [False, True])
def test_greedy_codes_equal_transformers_generate(tiny_fp32_session, hf, reference_audio, with_voice):
    processor, model = hf
    history = (Turn("A tone for reference.", audio=reference_audio),) if with_voice else ()
    request = GenerationRequest(text="Hello there, how are you?", scene="A quiet room." if with_voice else None,
                                history=history, sampling=GREEDY, max_frames=40)
    expected = hf_generated(model, hf_inputs(processor, request, [reference_audio] * len(history)), 48)
    [(frames, finished)] = tiny_fp32_session.generate_frames([request])
    assert frames.shape == expected.shape == (48, 8)
    assert np.array_equal(frames, expected)
    assert not finished


def test_greedy_parity_through_the_end_of_stream(tiny_model, hf):
    """Bias the EOS head row so both stop early: the delay-pattern EOS countdown must agree."""
    processor, model = hf
    session = ModelSession.load(str(tiny_model), device="cpu", dtype="fp32")
    request = GenerationRequest(text="Stop soon.", sampling=GREEDY, max_frames=120)
    plain = hf_generated(model, hf_inputs(processor, request, []), 30)
    favourite = int(plain[6, 0])  # a code codebook 0 picks greedily: EOS takes its place
    biased = copy.deepcopy(model)
    for m in (biased, session.model):
        with torch.no_grad():
            head = m.audio_lm_head.weight
            head[1025] = head[favourite] * 2.0
    expected = hf_generated(biased, hf_inputs(processor, request, []), 128)
    [(frames, finished)] = session.generate_frames([request])
    assert finished and (expected[-1] == 1025).all()
    assert len(expected) < 128
    assert np.array_equal(frames, expected)


def test_greedy_parity_holds_in_any_batch_and_with_prefix_reuse(tiny_fp32_session, hf, reference_audio):
    processor, model = hf
    voice = Turn("A tone for reference.", audio=reference_audio)
    requests = [
        GenerationRequest(text="First line.", history=(voice,), sampling=GREEDY, max_frames=30),
        GenerationRequest(text="A second, longer line of speech.", sampling=GREEDY, max_frames=45),
        GenerationRequest(text="Third line, same voice.", history=(voice,), sampling=GREEDY, max_frames=20),
    ]
    expected = [hf_generated(model, hf_inputs(processor, r, [reference_audio] * len(r.history)), r.max_frames + 8)
                for r in requests]
    hits = tiny_fp32_session.prefixes.hits
    for batch_size in (1, 2, 3):
        got = tiny_fp32_session.generate_frames(requests, batch_size=batch_size)
        for (frames, _), want in zip(got, expected):
            assert np.array_equal(frames, want)
    assert tiny_fp32_session.prefixes.hits > hits  # the shared voice prefix was reused
    no_reuse = tiny_fp32_session.generate_frames(requests, batch_size=3, reuse_prefixes=False)
    for (frames, _), want in zip(no_reuse, expected):
        assert np.array_equal(frames, want)


def test_sampled_codes_depend_only_on_the_request_and_seed(tiny_session):
    sampling = Sampling(temperature=0.9, top_k=50, top_p=0.9)
    a = GenerationRequest(text="Seeded line.", sampling=sampling, seed=11, max_frames=25)
    b = GenerationRequest(text="Another line in the batch.", sampling=sampling, seed=12, max_frames=40)
    alone = tiny_session.generate([a], batch_size=1)[0]
    together = tiny_session.generate([b, a, b], batch_size=3)[1]
    again = tiny_session.generate([a])[0]
    other_seed = tiny_session.generate([GenerationRequest(text="Seeded line.", sampling=sampling, seed=99,
                                                          max_frames=25)])[0]
    assert np.array_equal(alone.codes, together.codes)
    assert np.array_equal(alone.codes, again.codes)
    assert not np.array_equal(alone.codes, other_seed.codes)


def test_length_limit_and_result_shapes(tiny_session):
    request = GenerationRequest(text="Limit me.", sampling=GREEDY, max_frames=17)
    [result] = tiny_session.generate([request])
    assert result.codes.shape == (8, 17)
    assert not result.finished
    assert len(result.audio) == 17 * 960
    assert result.codes.max() < 1024


def test_ras_redraws_repeated_codes(tiny_session):
    """With RAS on and a window of 3 allowing 1 repeat, greedy's repeats get redrawn."""
    plain = tiny_session.generate([GenerationRequest(text="Repeat.", sampling=GREEDY, max_frames=60)])[0].codes
    ras = Sampling(temperature=0.0, top_p=1.0, ras_window=3, ras_max_repeat=1)
    with_ras = tiny_session.generate([GenerationRequest(text="Repeat.", sampling=ras, max_frames=60, seed=1)])[0]
    assert not np.array_equal(plain, with_ras.codes)


def test_codec_round_trip_equals_transformers(tiny_session, hf, reference_audio):
    processor, _ = hf
    codec = processor.audio_tokenizer
    values = processor.feature_extractor(reference_audio, sampling_rate=24000, return_tensors="pt")["input_values"]
    with torch.no_grad():
        expected_codes = codec.encode(values).audio_codes[0].numpy()
    codes = tiny_session.encode_audio(reference_audio)
    assert codes.shape == (8, 50)
    assert np.array_equal(codes, expected_codes)
    with torch.no_grad():
        expected_audio = codec.decode(torch.as_tensor(codes)[None]).audio_values[0, 0].numpy()
    assert np.array_equal(tiny_session.decode(codes), expected_audio)


def test_codec_is_not_degenerate(tiny_session, reference_audio):
    """Different codes give clearly different audio, and different audio different codes."""
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 1024, (2, 8, 25))
    audio_a, audio_b = tiny_session.decode(a), tiny_session.decode(b)
    assert np.abs(audio_a).max() <= 1.0
    assert np.abs(audio_a - audio_b).mean() > 0.1 * np.abs(audio_a).mean()
    noise = rng.normal(0, 0.2, reference_audio.size).astype(np.float32)
    assert (tiny_session.encode_audio(reference_audio) != tiny_session.encode_audio(noise)).mean() > 0.5


def test_batched_encode_gives_each_clip_its_own_codes(tiny_session, reference_audio, monkeypatch):
    """encode_many: equal-length clips share a pass, a repeated clip is encoded once, codes as alone."""
    rng = np.random.default_rng(3)
    other = (0.2 * rng.normal(size=reference_audio.size)).astype(np.float32)
    short = reference_audio[:24000].copy()
    clips = [reference_audio, other, reference_audio.copy(), short]
    passes: list[int] = []
    encode_batch = tiny_session.codec.encode_batch

    def counted(batch):
        passes.append(len(batch))
        return encode_batch(batch)

    monkeypatch.setattr(tiny_session.codec, "encode_batch", counted)
    together = tiny_session.encode_many(clips)
    assert sorted(passes) == [1, 2]  # {reference, other} in one pass, short alone, the copy not at all
    for clip, codes in zip(clips, together):
        assert np.array_equal(codes, tiny_session.encode_audio(clip))


def test_batched_decode_matches_single_decode_away_from_the_tail(tiny_session):
    rng = np.random.default_rng(2)
    batch = [rng.integers(0, 1024, (8, n)) for n in (60, 20, 45)]
    together = tiny_session.codec.decode_batch(batch)
    for codes, audio in zip(batch, together):
        alone = tiny_session.decode(codes)
        assert audio.shape == alone.shape
        body = len(alone) - 10 * 960  # the decoder sees about 9 frames ahead
        assert np.abs(audio[:body] - alone[:body]).max() < 1e-4


def test_streaming_joins_into_the_full_audio(tiny_session):
    request = GenerationRequest(text="Stream this line.", sampling=Sampling(temperature=0.8), seed=4, max_frames=70)
    full = tiny_session.generate([request])[0].audio
    chunks = list(tiny_session.stream(request, chunk_frames=5))
    assert len(chunks) > 2
    joined = np.concatenate(chunks)
    assert joined.shape == full.shape
    assert np.abs(joined - full).max() < 1e-3


def test_generate_decodes_equal_lengths_together_without_changing_audio(tiny_session):
    requests = [GenerationRequest(text=f"Line {i}.", sampling=GREEDY, max_frames=n) for i, n in
                enumerate((20, 20, 13, 20))]
    results = tiny_session.generate(requests, batch_size=4)
    for result in results:
        alone = tiny_session.decode(result.codes)
        assert result.audio.shape == alone.shape
        assert np.abs(result.audio - alone).max() < 1e-5


@pytest.mark.slow
def test_compiled_decode_step_gives_the_same_codes(tiny_model, tiny_fp32_session, capfd, _isolated_home, monkeypatch):
    """Compiled decode steps change no code: torch.compile (CUDA graphs on GPU) for batches of
    several, and on CPU an AOTInductor step for batch 1, built once and then loaded from disk.
    Compiling prints none of inductor's autotuning tables or warnings."""
    from torch._dynamo.utils import counters

    compiled = ModelSession.load(str(tiny_model), device="cpu", compile=True)
    graphs = counters["stats"]["unique_graphs"]
    requests = [GenerationRequest(text=f"Compiled line {i}.", sampling=GREEDY, max_frames=12) for i in range(3)]
    longer = [GenerationRequest(text="A longer compiled line. " * 12, sampling=GREEDY, max_frames=300)]
    runs = ((requests, 2), (requests, 1), (longer, 1), (longer + requests, 4))  # new batch and cache sizes
    for batch, size in runs:
        eager = tiny_fp32_session.generate_frames(batch, batch_size=size)
        fast = compiled.generate_frames(batch, batch_size=size)
        for (a, _), (b, _) in zip(eager, fast):
            assert np.array_equal(a, b)
    # on CPU a graph with packed weights holds its own copy of them: shapes are dynamic, so
    # one graph serves every batch of several; batch 1 is not torch.compile's at all
    assert counters["stats"]["unique_graphs"] - graphs == 1
    packages = list((_isolated_home / "compiled").glob("decode-b1-*.pt2"))
    assert len(packages) == 1
    printed = capfd.readouterr().err
    for noise in ("AUTOTUNE", "Autotune Choices", "TypedStorage", "No CUDA runtime", "Warning"):
        assert noise not in printed

    # a second session loads the batch-1 step from disk, and it gives the same codes
    def no_build(*args, **kwargs):
        raise AssertionError("the cached batch-1 step was built again")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", no_build)
    again = ModelSession.load(str(tiny_model), device="cpu", compile=True)
    for (a, _), (b, _) in zip(tiny_fp32_session.generate_frames(longer, batch_size=1),
                              again.generate_frames(longer, batch_size=1)):
        assert np.array_equal(a, b)


def test_one_row_attention_equals_sdpa():
    """The compiled batch-1 step's attention (multiply-and-sum) gives what sdpa gives, masked keys included."""
    import torch.nn.functional as F

    from higgs_cli.engine.model.forward import additive_mask, attend_one_row

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 16, 1, 64, generator=gen)
    keys, values = torch.randn(2, 1, 8, 40, 64, generator=gen)
    visible = torch.arange(40) <= 29  # the last 10 positions lie past the row's length
    mask = additive_mask(visible, torch.float32)
    expected = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask[None, None, None], scale=0.125,
                                              enable_gqa=True)
    assert torch.allclose(attend_one_row(q, keys, values, mask, 0.125), expected, atol=1e-5)


def test_streamed_products_only_for_one_compiled_cpu_row():
    """`linear` streams its weight (multiply-and-sum, no matmul) only while compiling a
    single CPU row, and gives what F.linear gives."""
    import torch.nn.functional as F

    from higgs_cli.engine.model.forward import linear, streams_one_row

    graphs: list[set[str]] = []

    def record(graph_module, example_inputs):
        graphs.append({str(node.target) for node in graph_module.graph.nodes
                       if node.op in ("call_function", "call_method")})
        return graph_module.forward

    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(48, 32, generator=gen).t().contiguous().t(), torch.randn(48, generator=gen)
    one, three = torch.randn(1, 1, 32, generator=gen), torch.randn(3, 1, 32, generator=gen)
    assert not streams_one_row(one)  # eager: always F.linear
    assert torch.equal(linear(one, weight, bias), F.linear(one, weight, bias))
    compiled = torch.compile(linear, backend=record, dynamic=False)
    for x in (one, three):
        assert torch.allclose(compiled(x, weight, bias), F.linear(x, weight, bias), atol=1e-5)
    streamed, batched = graphs
    assert not any("linear" in op for op in streamed) and any("sum" in op for op in streamed)
    assert any("linear" in op for op in batched)


def test_streamed_weights_are_read_in_equal_row_blocks():
    """A streamed weight is read in up to STREAMS equal row blocks (several reads in flight),
    whatever its row count, and the blocks join to what F.linear gives."""
    import torch.nn.functional as F

    from higgs_cli.engine.model.forward import STREAMS, linear, stream_count

    for rows in (1, 7, 13, 48, 50, 1024, 8208):
        blocks = stream_count(rows)
        assert 1 <= blocks <= STREAMS and rows % blocks == 0
    assert stream_count(8208) == STREAMS and stream_count(13) == 1 and stream_count(50) == 5

    sums: list[int] = []

    def record(graph_module, example_inputs):
        sums.append(sum(node.target in (torch.sum, "sum") for node in graph_module.graph.nodes))
        return graph_module.forward

    gen = torch.Generator().manual_seed(1)
    for rows in (48, 50):
        weight, x = torch.randn(rows, 32, generator=gen), torch.randn(1, 1, 32, generator=gen)
        out = torch.compile(linear, backend=record, dynamic=False)(x, weight)
        assert torch.allclose(out, F.linear(x, weight), atol=1e-5)
    assert sums == [stream_count(48), stream_count(50)]


def test_prefill_of_a_stored_prefix_beside_a_long_prompt(tiny_session, reference_audio):
    """Rows admitted together may mix a long stored prefix with a long unprefixed prompt."""
    voice = Turn("A tone for reference.", audio=reference_audio)
    tiny_session.generate_frames([GenerationRequest(text="Store the prefix.", history=(voice,), sampling=GREEDY,
                                                    max_frames=4)])
    requests = [GenerationRequest(text="Short.", history=(voice,), sampling=GREEDY, max_frames=6),
                GenerationRequest(text="A long line without any voice. " * 12, sampling=GREEDY, max_frames=6)]
    together = tiny_session.generate_frames(requests, batch_size=2)
    for request, (frames, _) in zip(requests, together):
        [(alone, _)] = tiny_session.generate_frames([request], batch_size=1, reuse_prefixes=False)
        assert np.array_equal(frames, alone)


def test_compiled_cache_sizes_are_few_and_tight():
    """Capacities for compiled steps: every need fits, at most half of one is unused, few distinct sizes."""
    from higgs_cli.engine.decode.loop import size_bucket

    sizes = {size_bucket(n) for n in range(256, 4097)}
    assert len(sizes) <= 9
    for n in range(1, 5000):
        assert n <= size_bucket(n) <= 1.5 * n



@pytest.mark.skipif(not cpu_has_bf16(), reason="bf16 is the default only on CPUs with bf16 units")
@pytest.mark.parametrize("with_voice", [False, True])
def test_bf16_greedy_codes_follow_transformers_in_bf16(tiny_model, tiny_session, reference_audio, with_voice):
    """In bf16 (the CPU default where the CPU has bf16 units) the engine follows transformers
    in bf16: its own attention (`attend_grouped`) and fused products against transformers' sdpa
    and separate ones. bf16 rounds at different points in the two, so greedy paths on a random
    model part at a near-tie after a while (here after 24 and 26 frames): the first 16 must agree."""
    from transformers import AutoProcessor, HiggsAudioV2ForConditionalGeneration

    session = tiny_session if tiny_session.dtype == torch.bfloat16 else \
        ModelSession.load(str(tiny_model), device="cpu", dtype="bf16")
    processor = AutoProcessor.from_pretrained(tiny_model)
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.bfloat16).eval()
    history = (Turn("A tone for reference.", audio=reference_audio),) if with_voice else ()
    request = GenerationRequest(text="Hello there, how are you?", scene="A quiet room." if with_voice else None,
                                history=history, sampling=GREEDY, max_frames=40)
    expected = hf_generated(model, hf_inputs(processor, request, [reference_audio] * len(history)), 48)
    [(frames, _)] = session.generate_frames([request])
    assert len(frames) >= 16 and len(expected) >= 16  # (and after parting, each may end on its own)
    assert np.array_equal(frames[:16], expected[:16])
