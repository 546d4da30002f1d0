"""`higgs voice prepare NAME DATA` through the real CLI entry point, on a FakeSession."""

from __future__ import annotations

import json

import pytest
from conftest import tone, write

from higgs_cli.sessions.identity import ModelIdentity


@pytest.fixture
def opener(fake_sessions):
    """Sessions whose identity is known without loading one: a fully cached run loads nothing."""
    from fakes import FakeSession

    return fake_sessions.known(ModelIdentity(FakeSession.name, FakeSession.model_id, FakeSession.codec_id))


def test_prepare_prints_json_and_a_second_run_loads_no_model(cli, opener, clips_dir, _isolated_home):
    write(clips_dir / "short.wav", tone(0.4), text="Short.")
    result = cli("--json", "voice", "prepare", "narrator", clips_dir)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["voice"] == "narrator" and report["kept"] == 4 and report["encoded"] == 4
    assert report["train"] == 3 and report["validation"] == 1 and len(report["digest"]) == 64
    [dropped] = report["dropped"]
    assert dropped["source"] == "short.wav" and dropped["reason"].endswith("s of sound: shorter than 1 s")
    assert any("min of audio" in w for w in report["warnings"])
    assert len(opener.made) == 1
    assert list((_isolated_home / "training" / "codes").glob("*.npy"))  # the cache, not DATA
    assert sorted(p.name for p in clips_dir.iterdir()) == sorted(
        [f"clip{i}.{ext}" for i in range(4) for ext in ("wav", "txt")] + ["short.wav", "short.txt"])
    again = json.loads(cli("--json", "voice", "prepare", "narrator", clips_dir).stdout)
    assert again["cached"] == 4 and again["encoded"] == 0 and again["digest"] == report["digest"]
    assert again["session"] == {"kind": "none"} and len(opener.made) == 1


def test_prepare_prints_the_dropped_clips_and_a_summary(cli, opener, clips_dir):
    write(clips_dir / "quiet.wav", tone(2.0, amp=0.0005), text="Quiet.")
    result = cli("voice", "prepare", "narrator", clips_dir)
    assert result.exit_code == 0, result.output
    assert "quiet.wav" in result.stdout and "near-silent" in result.stdout
    assert "narrator: kept 4 clip(s)" in result.stdout
    assert "warning:" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["Not A Name", "."], "not a valid voice name"),
    (["narrator", "missing-folder"], "no such file or folder"),
    (["narrator", "{empty}"], "no audio files"),
    (["narrator", "{empty}", "--validation-fraction", "1"], "validation-fraction"),
])
def test_bad_input_is_a_usage_error(cli, opener, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    result = cli("voice", "prepare", *[a.format(empty=tmp_path / "empty") for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert opener.made == []
