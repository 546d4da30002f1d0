"""The sampler's delay-pattern rules, without a model."""

import pytest
import torch

from higgs_cli.engine.delay import STREAM_BOS, STREAM_EOS
from higgs_cli.engine.request import GREEDY
from higgs_cli.engine.sampling import RowState


@pytest.mark.parametrize("eos_step", [None, 0, 3, 10])
def test_forcing_by_index_ranges_equals_the_forced_masks(eos_step):
    """`forced` (masks, the sampled path) and `force` (index ranges, the greedy path) both follow
    the delay pattern, BOS before EOS."""
    row = RowState(GREEDY, torch.Generator().manual_seed(0), max_steps=100, num_codebooks=8, eos_step=eos_step)
    gen = torch.Generator().manual_seed(1)
    for step in range(24):
        row.step = step
        if eos_step is not None and step < eos_step:
            continue  # an EOS step always lies in the past
        chosen = torch.randint(0, 1024, (8,), generator=gen)
        # the delay pattern: codebook k starts k frames late and ends k + 1 frames after the first EOS
        k = torch.arange(8)
        bos = step <= k
        eos = torch.zeros_like(bos) if eos_step is None else step >= eos_step + 1 + k
        assert all(torch.equal(a, b) for a, b in zip(row.forced(), (bos, eos))), (step, eos_step)
        expected = torch.where(bos, STREAM_BOS, torch.where(eos, STREAM_EOS, chosen))
        row.force(chosen)
        assert torch.equal(chosen, expected), (step, eos_step)


def test_advance_notes_the_first_eos_and_the_end_of_stream():
    row = RowState(GREEDY, torch.Generator(), max_steps=100, num_codebooks=4)
    row.advance(torch.tensor([STREAM_BOS, STREAM_BOS, STREAM_BOS, STREAM_BOS]))
    row.advance(torch.tensor([STREAM_EOS, 5, 6, STREAM_BOS]))
    assert row.eos_step == 1 and not row.done
    row.advance(torch.tensor([STREAM_EOS, STREAM_EOS, 7, 8]))
    assert row.eos_step == 1 and not row.done
    row.advance(torch.full((4,), STREAM_EOS))
    assert row.done and row.finished and row.step == 4


def test_advance_stops_at_the_length_limit_unfinished():
    row = RowState(GREEDY, torch.Generator(), max_steps=2, num_codebooks=4)
    row.advance(torch.tensor([1, 2, 3, 4]))
    row.advance(torch.tensor([1, 2, 3, 4]))
    assert row.done and not row.finished


def test_only_rows_that_use_random_numbers_draw_them():
    """A greedy row without RAS draws nothing; a sampled row draws the same numbers
    whatever its batch, so its frame is the one it gets alone."""
    from higgs_cli.engine.request import Sampling
    from higgs_cli.engine.sampling import choose_frames

    sampled = Sampling(temperature=0.8, top_k=50, top_p=0.9, ras_window=0)
    logits = torch.randn(2, 8, 1026, generator=torch.Generator().manual_seed(3))

    def row(sampling, seed):
        return RowState(sampling, torch.Generator().manual_seed(seed), max_steps=100, num_codebooks=8, step=9)

    greedy_row, sampled_row = row(GREEDY, 1), row(sampled, 2)
    untouched = greedy_row.generator.get_state()
    together = choose_frames(logits, [greedy_row, sampled_row])
    assert not greedy_row.draws and sampled_row.draws
    assert torch.equal(greedy_row.generator.get_state(), untouched)
    assert torch.equal(together[0], logits[0].argmax(-1))
    alone = choose_frames(logits[1:], [row(sampled, 2)])
    assert torch.equal(together[1], alone[0])
