"""The speech-recognition guard: word error rates, a tiny random Whisper made at test time, loading
once and lazily, bad model settings, and a fake transcriber that forces a retry."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
from biased_models import tiny_whisper

from higgs_cli.engine.request import FRAME_RATE, SAMPLE_RATE, GenerationRequest, GenerationResult
from higgs_cli.errors import UsageError
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.project.building.generate import PendingLine, generate_missing, retry_seed
from higgs_cli.project.building.guards import LineChecker
from higgs_cli.project.building.guards_asr import AsrCheck, word_error_rate, words_of

TEXT = "Hello there, how are you today?"


def line_result(seconds: float = 2.0, seed: int = 0) -> GenerationResult:
    frames = int(seconds * FRAME_RATE)
    rng = np.random.default_rng(seed)
    return GenerationResult(codes=rng.integers(0, 1024, size=(8, frames)),
                            audio=(0.3 * rng.uniform(-1, 1, frames * SAMPLE_RATE // FRAME_RATE)).astype(np.float32),
                            finished=True)


def test_words_drop_case_punctuation_and_markup():
    assert words_of("Hello, [laugh] THERE! <b>it's</b> {x} fine.") == ["hello", "there", "its", "fine"]
    assert words_of("你好，世界 ok") == ["你", "好", "世", "界", "ok"]


def test_word_error_rate():
    assert word_error_rate(TEXT, "hello there how are you today") == 0.0
    assert word_error_rate(TEXT, "hello how are you to day") == pytest.approx(3 / 6)  # 1 deletion, 2 edits
    assert word_error_rate("one two", "one two three four five") == pytest.approx(1.5)  # may exceed 1
    assert word_error_rate("今天很好", "今天不好") == pytest.approx(1 / 4)  # character by character
    assert word_error_rate("[laugh]", "anything") is None  # nothing to say: nothing to compare


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return tiny_whisper(tmp_path_factory.mktemp("asr") / "whisper")


@pytest.mark.slow  # makes and loads a random Whisper
def test_a_random_whisper_flags_a_line_and_loads_once_lazily(whisper, monkeypatch):
    from higgs_cli.engine import asr

    loads = []
    real = asr.load_transcriber

    def counting(source, device=None):
        loads.append(source)
        return real(source, device="cpu")

    monkeypatch.setattr(asr, "load_transcriber", counting)
    checker = LineChecker(GuardSettings(asr_model=str(whisper), max_wer=0.5), plugin_checks=lambda **kw: [])
    assert loads == []  # nothing loads before a line is checked
    request = GenerationRequest(text=TEXT)
    first = checker.check(request, line_result(2.0, seed=1))
    second = checker.check(request, line_result(1.0, seed=2))
    assert loads == [str(whisper.resolve())]
    for flags in (first, second):
        [flag] = flags
        assert flag["code"] == "asr" and "word error rate" in flag["message"]
        assert "over guards.max_wer 0.5 is flagged" in flag["message"]


@pytest.mark.slow  # makes and loads a random Whisper
def test_a_relative_model_folder_is_found_in_the_project(whisper, tmp_path):
    project = whisper.parent
    check = AsrCheck(whisper.name, 0.5, root=project)
    assert check.source == str(whisper.resolve())


def test_bad_model_settings_are_clear_errors(tmp_path):
    with pytest.raises(UsageError) as error:
        LineChecker(GuardSettings(asr_model="./no-such-folder"), root=tmp_path)
    assert "guards.asr_model" in str(error.value) and "is not a folder" in str(error.value)
    assert "local Whisper checkpoint folder" in error.value.hint

    from higgs_cli.engine.asr import load_transcriber

    with pytest.raises(UsageError) as error:  # HF_HUB_OFFLINE is set by conftest: never the network
        load_transcriber("someone/not-downloaded-whisper")
    assert "neither a folder nor in the local model cache" in str(error.value)

    not_whisper = tmp_path / "empty"
    not_whisper.mkdir()
    with pytest.raises(UsageError) as error:
        load_transcriber(str(not_whisper))
    assert "could not be loaded as a speech-recognition model" in str(error.value)


def test_a_fake_transcriber_forces_a_retry():
    """Speech recognition hears the text only on the second try: the line is retried, that try kept."""
    heard = {7: "something else entirely", retry_seed(7, 1): "hello there how are you today"}
    seed_of = {}

    def transcriber(audio, rate):
        assert rate == SAMPLE_RATE
        return heard[seed_of[len(audio)]]

    class Session:
        def generate(self, requests, *, batch_size=8, progress=None):
            out = []
            for r in requests:
                result = line_result(2.0 + 0.04 * len(seed_of), seed=r.seed)  # a length per try
                seed_of[len(result.audio)] = r.seed
                out.append(result)
            return out

    done = {}
    checker = LineChecker(GuardSettings(asr_model="whisper", max_wer=0.5), transcriber=transcriber,
                          plugin_checks=lambda **kw: [])
    sink = SimpleNamespace(request=lambda p: GenerationRequest(text=TEXT, seed=7),
                           done=lambda p, r, rep: done.update({p.index: rep}))
    stats = generate_missing(Session(), [PendingLine(0, retries=2, seconds=2.0)], sink, batch_size=1,
                             progress=SimpleNamespace(frames=lambda n: None), checks=lambda: checker)
    report = done[0]
    assert report.tries == 2 and report.seed == retry_seed(7, 1) and report.flags == []
    assert stats.retried == [0] and stats.flagged == []


def test_nothing_to_generate_looks_at_no_asr_model(tmp_path):
    stats = generate_missing(None, [], None, batch_size=1, progress=None,
                             checks=partial(LineChecker, GuardSettings(asr_model="./gone"), root=tmp_path))
    assert stats.generated == set()
