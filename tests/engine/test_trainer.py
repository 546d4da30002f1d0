"""The trainer on the tiny checkpoint: it learns, a resumed run equals the uninterrupted one, and an
out-of-memory error halves the micro-batch with the same step losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from higgs_cli.engine.request import GenerationRequest, Turn
from higgs_cli.engine.training import state
from higgs_cli.engine.training import trainer as trainer_module
from higgs_cli.engine.training.settings import DEFAULT_TARGETS, TrainSettings
from higgs_cli.engine.training.trainer import Trainer, load_base


def _codes(session, seconds: float, pitch: float, seed: int) -> np.ndarray:
    t = np.arange(int(24000 * seconds)) / 24000
    noise = np.random.default_rng(seed).normal(0, 0.05, t.size)
    return session.encode_audio((0.3 * np.sin(2 * np.pi * pitch * t) + noise).astype(np.float32))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices gain nothing from threads, and on a loaded machine two threads waiting on each
    other made a step ten times slower (measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def items(tiny_fp32_session):
    session = tiny_fp32_session
    voice = Turn("A reference.", codes=_codes(session, 0.6, 180, 9))
    texts = ["One line.", "Another, longer line.", "A third.", "Four words here now.", "Five.", "Six is last."]
    made = [(GenerationRequest(text=text, history=(voice,)), _codes(session, 0.3 + 0.1 * i, 200 + 30 * i, i))
            for i, text in enumerate(texts)]
    return made[:5], made[5:]


def _trainer(tiny_model, items, run, on_event=None, **changes) -> Trainer:
    settings = TrainSettings(**{"steps": 4, "batch_size": 4, "micro_batch": 4, "warmup_steps": 1, "rank": 2,
                                "eval_every": 2, "checkpoint_every": 2, "learning_rate": 1e-2,
                                "targets": DEFAULT_TARGETS + ("audio_lm_head",), **changes})
    model, tokenizer = load_base(tiny_model, "cpu", "fp32")
    return Trainer(model, tokenizer, items[0], items[1], settings, run, {"data": "x"}, on_event)


def test_resume_after_a_kill_equals_the_uninterrupted_run(tiny_model, items, tmp_path):
    whole = _trainer(tiny_model, items, tmp_path / "whole").train()
    assert len(whole.progress.curve) == 4 and whole.progress.curve[-1][1] < whole.progress.curve[0][1]
    assert [s for s, _ in whole.progress.validation] == [2, 4]

    class Killed(BaseException):
        pass

    def kill_at_3(kind, data):
        if kind == "step" and data["step"] == 3:
            raise Killed

    with pytest.raises(Killed):
        _trainer(tiny_model, items, tmp_path / "cut", kill_at_3).train()
    assert [p.name for p in state.checkpoints(tmp_path / "cut")] == ["step-000002"]
    resumed = _trainer(tiny_model, items, tmp_path / "cut").train(resume=True)
    assert resumed.resumed_from == 2
    assert resumed.progress.curve == whole.progress.curve
    assert resumed.progress.validation == whole.progress.validation
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert (resumed.adapter / name).read_bytes() == (whole.adapter / name).read_bytes()

    with pytest.raises(Exception, match="differ"):
        _trainer(tiny_model, items, tmp_path / "cut", rank=8).train(resume=True)


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_global_batch(tiny_model, items, tmp_path, monkeypatch):
    plain = _trainer(tiny_model, items, tmp_path / "plain", steps=1, batch_size=2, micro_batch=1).train()
    real = trainer_module.loss_sums
    events = []

    def small_memory(model, batch):
        if batch["input_ids"].shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (pretend)")
        return real(model, batch)

    monkeypatch.setattr(trainer_module, "loss_sums", small_memory)
    halved = _trainer(tiny_model, items, tmp_path / "halved", lambda k, d: events.append((k, d)), steps=1,
                      batch_size=2, micro_batch=2).train()
    assert [d["micro_batch"] for k, d in events if k == "oom"] == [1]
    assert halved.progress.micro_batch == 1
    assert np.allclose([x for _, x in halved.progress.curve], [x for _, x in plain.progress.curve], rtol=1e-6)
