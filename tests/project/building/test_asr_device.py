"""Which device the speech-recognition guard's pipeline gets: the local session's, the CPU for a
server's or Ray's session unless --device was given, and a clear error for a device this machine lacks.

The transformers pipeline (engine/asr.py's `_pipeline`) is a fake that records its device: nothing is
downloaded or loaded."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from higgs_cli.engine import asr
from higgs_cli.engine.request import FRAME_RATE, SAMPLE_RATE, GenerationRequest, GenerationResult
from higgs_cli.errors import UsageError
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.project.building.generate import PendingLine, generate_missing
from higgs_cli.project.building.guards import LineChecker
from higgs_cli.sessions.client import RemoteSession
from higgs_cli.sessions.lazy import LazySession

TEXT = "Hello there, how are you today?"


def line_result() -> GenerationResult:
    frames = 2 * FRAME_RATE
    audio = (0.3 * np.random.default_rng(0).uniform(-1, 1, frames * SAMPLE_RATE // FRAME_RATE)).astype(np.float32)
    return GenerationResult(codes=np.zeros((8, frames), dtype=np.int64), audio=audio, finished=True)


class FakePipeline:
    """What load_transcriber uses of a pipeline; it hears TEXT whatever it is given."""

    feature_extractor = SimpleNamespace(sampling_rate=SAMPLE_RATE)
    model = SimpleNamespace(config=SimpleNamespace(max_target_positions=448))

    def __call__(self, inputs, **kwargs) -> dict:
        return {"text": TEXT}


@pytest.fixture
def pipelines(monkeypatch):
    """The devices each pipeline was made on (a fake `transformers.pipeline` that hears TEXT)."""
    made: list = []

    def fake_pipeline(folder: str, device: str) -> FakePipeline:
        made.append(device)
        return FakePipeline()

    monkeypatch.setattr(asr, "_pipeline", fake_pipeline)
    return made


@pytest.fixture
def gpus(monkeypatch):
    """Make this machine look as if it had `n` CUDA GPUs (0: none), whatever it really has."""
    def set_count(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return set_count


class LocalSession:
    """A session with its model in this process, on `device` (a ModelSession's is a torch.device)."""

    name = model_id = codec_id = "fake"
    is_random = False

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)

    def generate(self, requests, *, batch_size=8, progress=None):
        return [line_result() for _ in requests]


class Remote(RemoteSession):
    """A real RemoteSession (of a server on CUDA) whose generate() answers without HTTP."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1", {"model": "m", "model_id": "a", "codec_id": "b",
                                                "is_random": False, "device": "cuda"}, client=object())

    def generate(self, requests, *, batch_size=8, progress=None):
        return [line_result() for _ in requests]


class RaySessionLike:
    """What the checker sees of a RaySession: its actors (and their device) are other processes."""

    device = "cuda"

    def describe(self) -> dict:
        return {"kind": "ray", "model": "m", "workers": 2, "device": "cuda", "hosts": ["a"]}


def check_once(whisper, session, device: str | None = None) -> list:
    checker = LineChecker(GuardSettings(asr_model=str(whisper)), session=session, device=device,
                          plugin_checks=lambda **kw: [])
    return checker.check(GenerationRequest(text=TEXT), line_result())


def render_once(whisper, session, device: str | None = None) -> None:
    """The render's generation loop with the checks a render makes: from the session and --device,
    built only when a line is generated."""
    done: dict = {}
    sink = SimpleNamespace(request=lambda p: GenerationRequest(text=TEXT),
                           done=lambda p, r, rep: done.update({p.index: r}))
    generate_missing(session, [PendingLine(0, seconds=2.0)], sink, batch_size=1,
                     progress=SimpleNamespace(frames=lambda n: None),
                     checks=partial(LineChecker, GuardSettings(asr_model=str(whisper)), session=session, device=device))
    assert list(done) == [0]


def test_a_cpu_session_keeps_speech_recognition_on_the_cpu_even_with_a_gpu(tmp_path, pipelines, gpus):
    gpus(1)  # before the fix, any visible GPU got the pipeline
    flags = check_once(tmp_path, LocalSession("cpu"), device="cpu")
    assert "asr" not in [flag["code"] for flag in flags]  # the fake heard the text: the check ran through it
    render_once(tmp_path, LocalSession("cpu"), device="cpu")
    assert pipelines == ["cpu", "cpu"]


def test_a_cuda_session_shares_its_gpu(tmp_path, pipelines, gpus):
    gpus(2)
    render_once(tmp_path, LocalSession("cuda"))
    render_once(tmp_path, LocalSession("cuda:1"), device="cuda:1")
    assert pipelines == ["cuda", "cuda:1"]


def test_a_lazy_session_is_asked_its_device_only_when_a_line_is_checked(tmp_path, pipelines, gpus):
    gpus(1)
    lazy = LazySession(lambda: LocalSession("cuda"))
    checker = LineChecker(GuardSettings(asr_model=str(tmp_path)), session=lazy, plugin_checks=lambda **kw: [])
    assert not lazy.loaded and pipelines == []  # building the checks loads neither model
    render_once(tmp_path, lazy)
    assert pipelines == ["cuda"]
    checker.check(GenerationRequest(text=TEXT), line_result())
    assert pipelines == ["cuda", "cuda"]


def test_a_server_session_runs_speech_recognition_on_the_cpu_unless_told(tmp_path, pipelines, gpus):
    gpus(1)  # the server is on CUDA and this machine has a GPU: still the CPU without --device
    render_once(tmp_path, Remote())
    render_once(tmp_path, LazySession(Remote))
    check_once(tmp_path, RaySessionLike())
    assert pipelines == ["cpu", "cpu", "cpu"]
    render_once(tmp_path, Remote(), device="cuda")  # --device given: it places speech recognition here
    check_once(tmp_path, RaySessionLike(), device="cuda:0")
    assert pipelines[3:] == ["cuda", "cuda:0"]


def test_no_session_is_the_cpu_or_the_device_asked_for(tmp_path, pipelines, gpus):
    gpus(1)
    check_once(tmp_path, None)
    check_once(tmp_path, None, device="cuda")
    assert pipelines == ["cpu", "cuda"]


@pytest.mark.parametrize(("device", "count", "said"), [
    ("cuda", 0, "no CUDA GPU"), ("cuda:3", 2, "has 2 CUDA GPU(s)"), ("tpu", 1, "unknown device 'tpu'"),
    ("xla", 1, "unknown device 'xla'")])
def test_a_device_this_machine_lacks_is_refused_before_any_line(tmp_path, pipelines, gpus, device, count, said):
    gpus(count)
    generated = []

    class Counting(Remote):
        def generate(self, requests, **kw):
            generated.append(len(requests))
            return super().generate(requests, **kw)

    with pytest.raises(UsageError) as error:
        render_once(tmp_path, Counting(), device=device)
    assert said in str(error.value) and error.value.hint
    assert generated == [] and pipelines == []  # refused before the server generated anything


def test_mps_that_is_not_there_is_refused(tmp_path, pipelines, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UsageError) as error:
        check_once(tmp_path, Remote(), device="mps")
    assert "MPS is not available" in str(error.value) and "--device cpu" in error.value.hint
