"""The quality guards one by one (project/building/guards.py), the choice among tries, and the check_line hook."""

from __future__ import annotations

import numpy as np
import pytest

from higgs_cli.engine.request import FRAME_RATE, SAMPLE_RATE, GenerationRequest, GenerationResult
from higgs_cli.plugins import hookimpl
from higgs_cli.plugins.manager import get_plugin_manager
from higgs_cli.plugins.script import GuardSettings
from higgs_cli.project.building import guards
from higgs_cli.project.building.guards import LineChecker, best_try, builtin_checks, longest_loop, rank, text_amount

HOP = SAMPLE_RATE // FRAME_RATE


def speech(seconds: float, *, level: float = 0.3, seed: int = 0) -> np.ndarray:
    """Noise that is not silent, not clipped: stands in for speech."""
    n = int(seconds * SAMPLE_RATE)
    return (level * np.random.default_rng(seed).uniform(-1, 1, n)).astype(np.float32)


def result(seconds: float, *, audio: np.ndarray | None = None, codes: np.ndarray | None = None,
           finished: bool = True, seed: int = 0) -> GenerationResult:
    frames = int(round(seconds * FRAME_RATE))
    if codes is None:
        codes = np.random.default_rng(seed).integers(0, 1024, size=(8, frames))
    return GenerationResult(codes=codes, audio=speech(seconds, seed=seed) if audio is None else audio,
                            finished=finished)


TEXT = "The quick brown fox jumps over the lazy dog near the river bank."  # 13 words, about 4.3 s
REQUEST = GenerationRequest(text=TEXT, max_frames=750)


def codes_of(flags):
    return [f["code"] for f in flags]


def test_a_plausible_line_has_no_flags():
    assert builtin_checks(result(4.0), REQUEST, TEXT) == []


def test_a_line_cut_at_its_limit_is_unfinished_and_said_once():
    flags = builtin_checks(result(30.0, finished=False), REQUEST, TEXT)
    assert codes_of(flags) == ["unfinished"]  # not too_long as well: the limit says it
    assert "30 s, 750 frames" in flags[0]["message"] and "without the model ending it" in flags[0]["message"]


def test_too_short_and_too_long_give_the_figures():
    [short] = builtin_checks(result(0.6), REQUEST, TEXT)
    assert short["code"] == "too_short"
    assert "0.60 s of audio for 13 words" in short["message"] and "about 4.3 s expected" in short["message"]
    [long] = builtin_checks(result(20.0), REQUEST, TEXT)
    assert long["code"] == "too_long" and "20.0 s of audio for 13 words" in long["message"]
    assert "over 12.7 s is flagged" in long["message"]  # 64 characters / 15 = 4.27 s, x 2.5, + 2


def test_the_estimate_counts_characters_for_chinese():
    text = "今天天气很好，我们去公园散步吧。"  # 14 characters and two punctuation marks
    assert text_amount(text) == "14 characters"
    assert text_amount("Hello 世界 there") == "2 words and 2 characters"
    request = GenerationRequest(text=text)
    assert builtin_checks(result(3.0), request, text) == []  # about 3.2 s expected
    [short] = builtin_checks(result(0.4), request, text)
    assert short["code"] == "too_short" and "for 14 characters" in short["message"]


def test_mostly_silence():
    audio = np.concatenate([speech(1.0), np.zeros(3 * SAMPLE_RATE, dtype=np.float32)])
    flags = builtin_checks(result(4.0, audio=audio), REQUEST, TEXT)
    assert codes_of(flags) == ["silence"]
    assert "75% of its 4.0 s is silence" in flags[0]["message"]
    # pauses between words are not "mostly silence"
    audio = np.concatenate([speech(3.0), np.zeros(SAMPLE_RATE, dtype=np.float32)])
    assert builtin_checks(result(4.0, audio=audio), REQUEST, TEXT) == []


def test_clipping():
    audio = speech(4.0)
    audio[::100] = 1.0  # 1% of the samples at full scale
    flags = builtin_checks(result(4.0, audio=audio), REQUEST, TEXT)
    assert codes_of(flags) == ["clipping"] and "(1.00%) at full scale" in flags[0]["message"]
    audio = speech(4.0)
    audio[:10] = -1.0  # ten samples: a click, not clipping
    assert builtin_checks(result(4.0, audio=audio), REQUEST, TEXT) == []


def test_a_stuck_frame_is_a_loop():
    codes = np.random.default_rng(1).integers(0, 1024, size=(8, 100))
    codes[0, 40:100] = 7  # 60 frames (2.4 s) of one code
    flags = builtin_checks(result(4.0, codes=codes), REQUEST, TEXT)
    assert codes_of(flags) == ["loop"] and "one frame repeats 60 times in a row, 2.4 s" in flags[0]["message"]


def test_a_repeated_ngram_is_a_loop():
    codes = np.random.default_rng(2).integers(0, 1024, size=(8, 100))
    codes[0, 20:92] = np.tile([5, 9, 300, 12, 44, 8], 12)  # a 6-frame n-gram, 12 times (2.9 s)
    assert longest_loop(codes) == (6, 72)
    [loop] = builtin_checks(result(4.0, codes=codes), REQUEST, TEXT)
    assert loop["code"] == "loop" and "a stretch of 6 frames (0.24 s) repeats 12 times" in loop["message"]


def test_short_repeats_are_not_loops():
    codes = np.random.default_rng(3).integers(0, 1024, size=(8, 100))
    codes[0, 10:30] = 3  # 0.8 s of one code: a held sound
    codes[0, 50:58] = [1, 2, 1, 2, 1, 2, 1, 2]
    assert builtin_checks(result(4.0, codes=codes), REQUEST, TEXT) == []


def test_ranking_prefers_mild_then_few_then_first():
    unfinished = [{"code": "unfinished", "message": ""}]
    clipping = [{"code": "clipping", "message": ""}]
    two = [{"code": "clipping", "message": ""}, {"code": "clipping", "message": ""}]
    assert best_try([unfinished, clipping, []]) == 2
    assert best_try([unfinished, clipping]) == 1
    assert best_try([two, [{"code": "too_short", "message": ""}]]) == 1  # same weight, fewer flags
    assert best_try([clipping, clipping]) == 0  # a tie keeps the first try
    assert rank([{"code": "a plugin's own", "message": ""}], 0) == (guards.DEFAULT_SEVERITY, 1, 0)


def test_disabled_guards_check_nothing():
    checker = LineChecker(GuardSettings(enabled=False), plugin_checks=lambda **kw: pytest.fail("called"))
    assert checker.check(REQUEST, result(30.0, finished=False)) == []


class _Checker:
    """A check_line plugin: flags every line whose text has the word 'bad'."""

    @hookimpl
    def check_line(self, line, result):
        if "bad" in line.display_text.split():
            return [{"code": "says-bad", "message": f"'bad' in {line.display_text!r} ({result.frames} frames)"}]
        return None


class _Broken:
    @hookimpl
    def check_line(self, request):
        return "not a list"


@pytest.fixture
def plugin_manager():
    pm = get_plugin_manager()
    added = []

    def add(plugin, name):
        pm.register(plugin, name=name)
        added.append(name)

    yield pm, add
    for name in added:
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
    pm.failures[:] = [f for f in pm.failures if f.name not in added]


def test_a_check_line_plugin_adds_flags(plugin_manager):
    pm, add = plugin_manager
    add(_Checker(), "test-checker")
    checker = LineChecker(GuardSettings())
    request = GenerationRequest(text="a bad line")
    flags = checker.check(request, result(1.0))
    assert flags == [{"code": "says-bad", "message": "'bad' in 'a bad line' (25 frames)"}]
    assert checker.check(GenerationRequest(text="a good line"), result(1.0)) == []


def test_a_broken_checker_is_dropped_and_reported_like_a_broken_plugin(plugin_manager):
    pm, add = plugin_manager
    add(_Broken(), "test-broken-checker")
    checker = LineChecker(GuardSettings())
    assert checker.check(GenerationRequest(text="a line"), result(0.6)) == []
    [failure] = [f for f in pm.failures if f.name == "test-broken-checker"]
    assert "check_line returned str, not a list of flags" in failure.message and "is broken" in failure.message
    assert pm.get_plugin("test-broken-checker") is None  # not called again


def test_markup_is_not_counted_as_speech():
    request = GenerationRequest(text="[SPEAKER0] Hi. <SE>[Laughter]</SE>")
    assert guards.spoken_text(request.text) == "Hi."
    assert builtin_checks(result(0.28), request, request.text) == []  # 0.5 s expected, 0.2 s allowed
    [short] = builtin_checks(result(0.12), request, request.text)
    assert "for 1 word (" in short["message"]
    assert builtin_checks(result(0.04), GenerationRequest(text="[laugh]"), "[laugh]") == []  # nothing to say
