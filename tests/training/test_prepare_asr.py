"""`voice prepare --asr-model`: the guards' Whisper pipeline (a tiny random checkpoint made here)
transcribes an untranscribed recording's cuts and checks transcripts against their audio; what it
heard is cached, so a second run loads no Whisper."""

from __future__ import annotations

import json

import pytest
from biased_models import tiny_whisper
from conftest import bursts, tone, write


@pytest.mark.slow  # makes and loads a random Whisper
def test_recognition_cuts_transcribes_checks_and_is_cached(cli, fake_sessions, tmp_path, monkeypatch):
    from higgs_cli.engine import asr

    loads = []
    real = asr.load_transcriber
    monkeypatch.setattr(asr, "load_transcriber", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    whisper = tiny_whisper(tmp_path / "whisper")
    folder = tmp_path / "data"
    write(folder / "book.wav", bursts(3))  # 3 x 2 s, 0.6 s apart: one cut
    write(folder / "read.wav", tone(2.0), text="The words this clip was meant to say.")
    result = cli("--json", "voice", "prepare", "narrator", folder, "--asr-model", whisper)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 1  # the cut of book.wav, with whatever a random Whisper heard
    [dropped] = report["dropped"]  # the random Whisper hears gibberish, not the transcript
    assert dropped["source"] == "read.wav" and "does not match its audio" in dropped["reason"]
    assert loads == [str(whisper)]
    again = json.loads(cli("--json", "voice", "prepare", "narrator", folder, "--asr-model", whisper).stdout)
    assert again["digest"] == report["digest"] and again["dropped"] == report["dropped"]
    assert loads == [str(whisper)] and again["encoded"] == 0


def test_a_missing_whisper_is_a_usage_error_naming_the_option(cli, fake_sessions, tmp_path):
    write(tmp_path / "book.wav", bursts(3))
    result = cli("voice", "prepare", "narrator", tmp_path / "book.wav", "--asr-model", tmp_path / "no-whisper")
    assert result.exit_code == 2, result.output
    assert "--asr-model" in result.output and "hf download" in result.output
