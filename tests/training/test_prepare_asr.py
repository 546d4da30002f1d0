"""`voice prepare --asr-model`: the guards' Whisper pipeline (a tiny random checkpoint made here)
transcribes an untranscribed recording's cuts and checks transcripts against their audio."""

from __future__ import annotations

import json

import pytest
from biased_models import tiny_whisper
from conftest import bursts, tone, write


@pytest.mark.slow  # makes and loads a random Whisper
def test_recognition_cuts_transcribes_and_checks(cli, fake_sessions, tmp_path):
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
