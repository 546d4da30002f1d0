"""The online scheduler: requests admitted while others decode give the codes they give alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from higgs_cli.engine.request import GREEDY, GenerationRequest, Sampling, Turn

SAMPLED = Sampling(temperature=0.9, top_k=50, top_p=0.9)


@pytest.fixture(scope="module")
def scheduler(tiny_session):
    from higgs_cli.engine.scheduler import Scheduler

    scheduler = Scheduler(tiny_session, slots=4, max_queue=8).start()
    yield scheduler
    scheduler.close()


def _requests():
    return [GenerationRequest(text=f"Line number {i}, said once.", sampling=SAMPLED if i % 2 else GREEDY,
                              seed=i, max_frames=12 + 5 * i) for i in range(7)]


def test_each_request_gets_its_solo_codes_beside_others(tiny_session, scheduler):
    requests = _requests()
    alone = [tiny_session.generate([r], batch_size=1)[0] for r in requests]
    tickets = scheduler.submit_many(requests)  # 7 requests, 4 slots: later ones join as slots free up
    for ticket, want in zip(tickets, alone):
        assert ticket.wait(60)
        assert np.array_equal(ticket.codes(), want.codes)
        assert ticket.finished == want.finished
    [result] = scheduler.generate([requests[3]])
    assert np.array_equal(result.audio, alone[3].audio)


def test_requests_submitted_from_threads_while_decoding(tiny_session, scheduler):
    requests = _requests()[:5]
    alone = [tiny_session.generate([r], batch_size=1)[0].codes for r in requests]
    got: dict[int, np.ndarray] = {}

    def client(i):
        got[i] = scheduler.generate([requests[i]])[0].codes

    threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(np.array_equal(got[i], alone[i]) for i in range(5))


def test_a_reference_voice_and_a_long_ras_window(tiny_session, scheduler):
    voice = Turn("A reference.", codes=np.random.default_rng(0).integers(0, 1024, size=(8, 30)))
    request = GenerationRequest(text="With a voice.", history=(voice,), seed=3, max_frames=20,
                                sampling=Sampling(ras_window=20))
    want = tiny_session.generate([request], batch_size=1)[0].codes
    assert np.array_equal(scheduler.generate([request, request])[1].codes, want)


def test_a_cancelled_request_frees_its_slot(scheduler):
    from higgs_cli.engine.scheduler import QueueFull

    long = GenerationRequest(text="A long one.", sampling=SAMPLED, max_frames=2000)
    tickets = scheduler.submit_many([long] * 4)
    for ticket in tickets:
        ticket.cancel()
    assert all(ticket.wait(60) for ticket in tickets)
    assert all(len(ticket.frames()) < 2000 for ticket in tickets)
    assert scheduler.stats()["busy_slots"] == 0
    with pytest.raises(QueueFull):  # at most slots + max_queue held at once
        scheduler.submit_many([long] * (scheduler.slots + scheduler.max_queue + 1))
    short = GenerationRequest(text="Still serving.", sampling=GREEDY, max_frames=5)
    assert scheduler.generate([short])[0].codes.shape[1] <= 5


def test_frames_arrive_while_a_request_runs(scheduler):
    ticket = scheduler.submit(GenerationRequest(text="Streamed.", sampling=GREEDY, max_frames=30))
    seen = []
    while True:
        blocks, done = ticket.take()
        seen.extend(blocks)
        if done:
            break
        ticket.wait(0.01)
    assert len(seen) > 1 and np.array_equal(np.concatenate(seen), ticket.frames())


def test_a_failing_step_fails_its_requests_and_the_loop_goes_on(tiny_session, scheduler, monkeypatch):
    real = tiny_session.runner.prefill_many
    calls = []

    def fail_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(tiny_session.runner, "prefill_many", fail_once)
    request = GenerationRequest(text="Fails once.", sampling=GREEDY, max_frames=8)
    ticket = scheduler.submit(request)
    assert ticket.wait(60)
    with pytest.raises(RuntimeError, match="simulated"):
        ticket.codes()
    monkeypatch.setattr(tiny_session.runner, "prefill_many", real)
    assert scheduler.generate([request])[0].codes.shape[1] <= 8


@pytest.mark.slow
def test_a_compiled_session_steps_a_lone_request_alone(tiny_model, _isolated_home):
    """On a compiled CPU session the scheduler steps only the busy low slots: a lone request
    takes the batch-1 AOTInductor step (not a 4-row graph), and every code stays the same."""
    from higgs_cli.engine.scheduler import Scheduler
    from higgs_cli.engine.session import ModelSession

    calls = {"rows": []}
    compiled = ModelSession.load(str(tiny_model), device="cpu", compile=True)
    inner = compiled.compiled_decode

    def counting(cache, lengths, frames, span):
        calls["rows"].append(frames.shape[0])
        return inner(cache, lengths, frames, span)

    compiled.compiled_decode = counting
    requests = _requests()[:3]
    eager = ModelSession.load(str(tiny_model), device="cpu", dtype="fp32")  # a compiled CPU session's dtype
    assert compiled.dtype == eager.dtype == torch.float32
    alone = [eager.generate([r], batch_size=1)[0].codes for r in requests]
    scheduler = Scheduler(compiled, slots=4).start()
    try:
        [lone] = scheduler.submit_many(requests[:1])
        assert lone.wait(300) and np.array_equal(lone.codes(), alone[0])
        assert set(calls["rows"]) == {1}
        assert list((_isolated_home / "compiled").glob("decode-b1-*.pt2"))  # built on the first lone step
        tickets = scheduler.submit_many(requests)
        for ticket, want in zip(tickets, alone):
            assert ticket.wait(300) and np.array_equal(ticket.codes(), want)
    finally:
        scheduler.close()
