"""The batched sampler and its counter-based random numbers, without a model."""

import math

import pytest
import torch

from higgs_cli.engine.decode import rng
from higgs_cli.engine.decode.sampling import (
    NO_EOS,
    Mode,
    RowSettings,
    apply_forcing,
    choose,
    draw,
    forced_masks,
    nucleus_keep,
    ras_repeats,
    recent_frames,
    sample,
)
from higgs_cli.engine.decode.slots import SlotTable, mode_for
from higgs_cli.engine.model.delay import STREAM_BOS, STREAM_EOS
from higgs_cli.engine.request import GREEDY, Sampling

VOCAB = 1026


def settings(batch: int, *, seeds=None, steps=0, temperature=0.8, top_k=VOCAB, top_p=1.0, window=0,
             repeat=2, eos=NO_EOS) -> RowSettings:
    def full(value, dtype=torch.int64):
        return torch.as_tensor(value, dtype=dtype).expand(batch).clone()

    return RowSettings(seeds=torch.arange(batch) if seeds is None else torch.as_tensor(seeds), steps=full(steps),
                       eos_steps=full(eos), temperature=full(temperature, torch.float32), top_k=full(top_k),
                       top_p=full(top_p, torch.float32), ras_window=full(window), ras_max_repeat=full(repeat))


# ---------------------------------------------------------------- random numbers

def test_mixer_matches_plain_python_32_bit_arithmetic():
    """The int64 tensor hash equals lowbias32 computed with Python's exact integers."""
    def reference(x: int) -> int:
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)

    values = [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1, 0xDEADBEEF]
    got = rng.mix32(torch.tensor(values)).tolist()
    assert got == [reference(v) for v in values]
    assert all(0 <= v < 2**32 for v in got)


def test_uniforms_depend_only_on_their_counters():
    """A row's numbers are the same alone or in any batch, and differ by seed, step, codebook, stream."""
    seeds, steps = torch.tensor([7, 2**32 - 1, 0]), torch.tensor([5, 0, 900])
    together = rng.uniforms(seeds, steps, 8)
    for b in range(3):
        assert torch.equal(rng.uniforms(seeds[b:b + 1], steps[b:b + 1], 8)[0], together[b])
    assert together.shape == (3, rng.STREAMS, 8)
    assert ((together >= 0) & (together < 1)).all()
    assert len(set(together.flatten().tolist())) == together.numel()
    assert not torch.equal(rng.uniforms(torch.tensor([8]), steps[:1], 8), together[:1])


def test_uniforms_are_uniform():
    seeds = torch.arange(20000)
    u = rng.uniforms(seeds, torch.full_like(seeds, 3), 8).flatten()
    counts = torch.histc(u, bins=20, min=0, max=1)
    expected = u.numel() / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 45  # 19 degrees of freedom: p < 0.001 above about 43.8
    assert abs(float(u.mean()) - 0.5) < 0.005


# ---------------------------------------------------------------- the rules

@pytest.mark.parametrize("eos_step", [None, 0, 3, 10])
def test_forcing_follows_the_delay_pattern(eos_step):
    """Codebook k starts k frames late and ends k + 1 frames after the first EOS; BOS wins."""
    gen = torch.Generator().manual_seed(1)
    steps = torch.arange(24) if eos_step is None else torch.arange(eos_step, 24)
    eos_steps = torch.full_like(steps, NO_EOS if eos_step is None else eos_step)
    chosen = torch.randint(0, 1024, (len(steps), 8), generator=gen)
    k = torch.arange(8)[None]
    bos = steps[:, None] <= k
    eos = torch.zeros_like(bos) if eos_step is None else steps[:, None] >= eos_step + 1 + k
    got_bos, got_eos = forced_masks(steps, eos_steps, 8)
    assert torch.equal(got_bos, bos) and torch.equal(got_eos, eos)
    expected = torch.where(bos, STREAM_BOS, torch.where(eos, STREAM_EOS, chosen))
    assert torch.equal(apply_forcing(chosen, steps, eos_steps), expected)


def reference_keep(probs: list[float], top_k: int, top_p: float) -> list[bool]:
    """The rule, one row at a time: rank below top_k and the mass strictly before below top_p; the best always."""
    keep, mass = [], 0.0
    for rank, p in enumerate(probs):
        keep.append(rank == 0 or (rank < top_k and mass < top_p))
        mass += p
    return keep


def test_top_k_and_top_p_masks_follow_the_reference_rule():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, 40, generator=gen) * 2
    probs = logits.softmax(-1).sort(-1, descending=True).values.double()
    top_k = torch.tensor([40, 5, 1, 40, 12, 3])
    top_p = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.9, 0.05], dtype=torch.float64)
    keep = nucleus_keep(probs.cumsum(-1) - probs, top_k, top_p)
    for b in range(6):
        for k in range(3):
            assert keep[b, k].tolist() == reference_keep(probs[b, k].tolist(), int(top_k[b]), float(top_p[b]))


def test_draw_never_picks_a_token_without_mass():
    """Uniforms lie strictly inside (0, 1); a flat step of the cdf is never the first to reach them."""
    probs = torch.tensor([[[0.0, 0.5, 0.0, 0.5, 0.0]]]).expand(4, 1, 5)
    cdf = probs.cumsum(-1)
    u = torch.tensor([[2**-24], [0.4999], [0.5001], [1 - 2**-24]])
    assert draw(cdf, cdf[..., -1], u).flatten().tolist() == [1, 1, 3, 3]
    ends = rng.uniforms(torch.tensor([0, 1]), torch.tensor([0, 0]), 8)
    assert (ends > 0).all() and (ends < 1).all()
    top = ((torch.tensor(2**32 - 1) >> (32 - rng.UNIFORM_BITS)).float() + 0.5) / 2**rng.UNIFORM_BITS
    assert 0 < float(top) < 1


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, VOCAB, 1.0), (0.7, 4, 1.0), (1.3, VOCAB, 0.8)])
def test_sampled_frequencies_follow_the_tempered_nucleus(temperature, top_k, top_p):
    """Chi-square of the codes drawn over many seeds against the distribution the rule defines."""
    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0])
    batch = 40000
    rows = settings(batch, temperature=temperature, top_k=top_k, top_p=top_p)
    draws = rng.uniforms(rows.seeds, rows.steps, 1)[:, rng.SAMPLE_STREAM]
    codes = sample(logits.expand(batch, 1, -1), rows, draws).flatten()
    probs = (logits / temperature).softmax(-1)  # logits are sorted already
    keep = torch.tensor(reference_keep(probs.tolist(), top_k, top_p))
    expected = torch.where(keep, probs, 0.0)
    expected = expected / expected.sum() * batch
    counts = torch.bincount(codes, minlength=len(logits)).double()
    assert (counts[~keep] == 0).all()
    chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof) + 5, (chi2, dof)


def reference_ras(choice, history, window, repeat):
    """RAS per row and codebook in plain Python: which codes must be drawn again."""
    out = []
    for b, row in enumerate(choice):
        recent = history[b][-window[b]:] if window[b] else []
        out.append([sum(frame[k] == code for frame in recent if frame[k] not in (STREAM_BOS, STREAM_EOS))
                    >= repeat[b] if window[b] else False for k, code in enumerate(row)])
    return out


def test_ras_redraw_rule_equals_a_per_row_reference():
    gen = torch.Generator().manual_seed(5)
    batch, frames_so_far, k = 6, 12, 4
    buffer = torch.randint(0, 4, (batch, 20, k), generator=gen)  # few codes: many repeats
    buffer[buffer == 3] = STREAM_BOS
    buffer[0, :, 0] = STREAM_EOS
    steps = torch.tensor([12, 12, 1, 0, 12, 7])
    windows, repeats = [7, 3, 7, 7, 0, 12], [2, 1, 1, 1, 1, 3]
    rows = settings(batch, steps=0, window=0)
    rows.steps.copy_(steps)
    rows.ras_window.copy_(torch.tensor(windows))
    rows.ras_max_repeat.copy_(torch.tensor(repeats))
    choice = torch.randint(0, 4, (batch, k), generator=gen)
    recent = recent_frames(buffer, torch.arange(batch), rows, max(windows))
    got = ras_repeats(choice, recent, rows)
    history = [buffer[b, :int(steps[b])].tolist() for b in range(batch)]
    assert got.tolist() == reference_ras(choice.tolist(), history, windows, repeats)
    assert frames_so_far and got.any() and not got.all()


def test_greedy_rows_take_the_argmax_beside_sampled_rows():
    """A greedy row without RAS is exactly the argmax (then forced), whatever else is in the batch;
    a sampled row's code is the one it gets alone."""
    logits = torch.randn(3, 8, VOCAB, generator=torch.Generator().manual_seed(3))
    rows = settings(3, seeds=[4, 5, 6], steps=9, temperature=0.0, top_k=50, top_p=0.9)
    rows.temperature[1] = 0.8
    chosen = choose(logits, rows, Mode(samples=True))
    assert torch.equal(chosen[0], logits[0].argmax(-1)) and torch.equal(chosen[2], logits[2].argmax(-1))
    alone = settings(1, seeds=[5], steps=9, temperature=0.8, top_k=50, top_p=0.9)
    assert torch.equal(choose(logits[1:2], alone, Mode(samples=True))[0], chosen[1])
    assert torch.equal(choose(logits[:1], settings(1, seeds=[4], steps=9, temperature=0.0), Mode())[0], chosen[0])


# ---------------------------------------------------------------- the slot table

def test_slot_table_notes_the_first_eos_and_the_end_of_stream():
    table = SlotTable(2, 10, 4, VOCAB, torch.device("cpu"))
    table.admit(1, length=5, sampling=GREEDY, seed=0, max_steps=10)
    only = torch.tensor([1])
    for frame in ([9, 9, 9, 9], [STREAM_EOS, 5, 6, 9], [7, 7, 7, 7], [9, 9, 9, 9]):
        logits = torch.zeros(1, 4, VOCAB)
        logits[0, torch.arange(4), torch.tensor(frame)] = 1.0
        table.choose_and_record(logits, Mode(), only)
    done, steps = table.status()
    assert steps == [0, 4] and done == [True, False]
    assert int(table.rows.eos_steps[1]) == 1  # forced after: codebook 0 at step 2, 1 at step 3
    bos, eos = STREAM_BOS, STREAM_EOS
    assert table.frames[1, :4].tolist() == [[bos] * 4, [eos, bos, bos, bos], [eos, 7, bos, bos], [eos, eos, 9, bos]]
    for _ in range(3):
        table.choose_and_record(torch.zeros(2, 4, VOCAB), Mode())
    done, steps = table.status()
    assert steps == [0, 6] and done == [True, True]
    frames, finished = table.read(1, 6)
    assert finished and (frames[-1] == STREAM_EOS).all()


def test_slot_table_stops_at_the_length_limit_unfinished():
    table = SlotTable(1, 4, 4, VOCAB, torch.device("cpu"))
    table.admit(0, length=3, sampling=GREEDY, seed=0, max_steps=2)
    table.choose_and_record(torch.zeros(1, 4, VOCAB), Mode(), torch.tensor([0]))  # from the prefill
    for _ in range(3):  # decode steps; those past the end change nothing
        table.choose_and_record(torch.zeros(1, 4, VOCAB), Mode())
    done, steps = table.status()
    assert done == [True] and steps == [2]
    assert int(table.lengths[0]) == 3 + 1  # one decode step advanced the position
    assert not table.read(0, 2)[1]


def test_mode_runs_only_the_ops_a_batch_needs():
    assert mode_for([GREEDY]) == Mode(samples=False, window=0)
    assert mode_for([GREEDY, Sampling(temperature=0.5, ras_window=7)]) == Mode(samples=True, window=7)
    assert mode_for([Sampling(temperature=0.0, ras_window=3, ras_max_repeat=1)]) == Mode(samples=False, window=3)
