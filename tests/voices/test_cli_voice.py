"""`higgs voice ...` end to end through the real CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from higgs_cli.fsutil import exclusive_lock

SR = 24000


@pytest.fixture
def ref(tmp_path):
    def make(name="ref.wav", seconds=2.0, rate=44100, seed=0):
        t = np.arange(round(seconds * rate)) / rate
        x = 0.3 * np.sin(2 * np.pi * (140 + 20 * seed) * t)
        path = tmp_path / name
        sf.write(path, np.stack([x, x], axis=1), rate)  # stereo 44.1 kHz: the library converts it
        return path

    return make


@pytest.fixture
def voices(_isolated_home):
    return _isolated_home / "voices"


def test_add_show_list_json(cli, ref, voices):
    result = cli("voice", "add", "ana", ref(), "--transcript", "Hello there.", "--description", "warm")
    assert result.exit_code == 0, result.output
    assert "added voice ana (2.0 s)" in result.stdout
    assert (voices / "ana" / "voice.json").is_file()

    shown = cli("--json", "voice", "show", "ana")
    data = json.loads(shown.stdout)
    assert data["name"] == "ana" and data["transcript"] == "Hello there." and data["description"] == "warm"
    assert data["duration"] == pytest.approx(2.0, abs=1e-3)

    human = cli("voice", "show", "ana")
    assert "transcript:  Hello there." in human.stdout and "description: warm" in human.stdout

    cli("voice", "add", "bo", ref(seed=1), "-t", "Second.")
    listed = cli("voice", "list")
    assert listed.exit_code == 0
    lines = [line.split() for line in listed.stdout.splitlines()]
    assert lines[0][:3] == ["name", "seconds", "description"]
    assert [line[0] for line in lines[1:]] == ["ana", "bo"]
    data = json.loads(cli("--json", "voice", "list").stdout)
    assert [v["name"] for v in data["voices"]] == ["ana", "bo"] and data["skipped"] == []


def test_markup_in_text_is_printed_as_written(cli, ref):
    cli("voice", "add", "ana", ref(), "-t", "[laughs] Hi [/] there", "-d", "[bold]calm")
    shown = cli("voice", "show", "ana")
    assert shown.exit_code == 0
    assert "[laughs] Hi [/] there" in shown.stdout and "[bold]calm" in shown.stdout
    listed = cli("voice", "list")
    assert "[laughs] Hi [/] there" in listed.stdout


def test_transcript_file(cli, ref, tmp_path):
    (tmp_path / "t.txt").write_text("From a file.\n", encoding="utf-8")
    assert cli("voice", "add", "ana", ref(), "--transcript-file", tmp_path / "t.txt").exit_code == 0
    assert json.loads(cli("--json", "voice", "show", "ana").stdout)["transcript"] == "From a file."


@pytest.mark.parametrize(("args", "message"), [
    ([], "exactly one of --transcript or --transcript-file"),
    (["--transcript", "a", "--transcript-file", "t.txt"], "exactly one of"),
    (["--transcript-file", "missing.txt"], "cannot read transcript file"),
    (["--transcript", "   "], "transcript is empty"),
])
def test_add_transcript_errors(cli, ref, args, message):
    result = cli("voice", "add", "ana", ref(), *args)
    assert result.exit_code == 2 and message in result.stderr


def test_add_errors_exit_codes(cli, ref, tmp_path):
    bad_name = cli("voice", "add", "Ana", ref(), "-t", "hi")
    assert bad_name.exit_code == 2 and "not a valid voice name" in bad_name.stderr and "'ana'" in bad_name.stderr
    missing = cli("voice", "add", "ana", tmp_path / "nope.wav", "-t", "hi")
    assert missing.exit_code == 1 and "nope.wav does not exist" in missing.stderr
    short = cli("voice", "add", "ana", ref(seconds=0.2), "-t", "hi")
    assert short.exit_code == 1 and "at least 0.5 s" in short.stderr
    as_json = cli("--json", "voice", "add", "ana", tmp_path / "nope.wav", "-t", "hi")
    assert json.loads(as_json.stdout)["exit_code"] == 1


def test_add_without_force_keeps_old_voice_byte_identical(cli, ref, voices):
    cli("voice", "add", "ana", ref(seed=1), "-t", "first")
    before = {p.name: p.read_bytes() for p in (voices / "ana").iterdir()}
    refused = cli("voice", "add", "ana", ref(seed=2), "-t", "second")
    assert refused.exit_code == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert {p.name: p.read_bytes() for p in (voices / "ana").iterdir()} == before
    assert cli("voice", "add", "ana", ref(seed=2), "-t", "second", "--force").exit_code == 0
    assert json.loads(cli("--json", "voice", "show", "ana").stdout)["transcript"] == "second"


def test_show_unknown_suggests(cli, ref):
    cli("voice", "add", "narrator", ref(), "-t", "hi")
    result = cli("voice", "show", "narator")
    assert result.exit_code == 2
    assert "no voice named 'narator'" in result.stderr and "did you mean 'narrator'?" in result.stderr


def test_remove_needs_yes(cli, ref, voices):
    cli("voice", "add", "ana", ref(), "-t", "hi")
    refused = cli("voice", "remove", "ana")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert (voices / "ana").is_dir()
    assert cli("voice", "remove", "ana", "--yes").exit_code == 0
    assert not (voices / "ana").exists()
    assert cli("voice", "remove", "ana", "--yes").exit_code == 2


def test_rename(cli, ref):
    cli("voice", "add", "ana", ref(), "-t", "hi")
    cli("voice", "add", "bo", ref(seed=1), "-t", "bo")
    assert cli("voice", "rename", "ana", "bo").exit_code == 2
    result = cli("voice", "rename", "ana", "anna")
    assert result.exit_code == 0 and "renamed voice ana to anna" in result.stdout
    assert cli("voice", "rename", "anna", "bo", "--force").exit_code == 0
    names = [v["name"] for v in json.loads(cli("--json", "voice", "list").stdout)["voices"]]
    assert names == ["bo"]


def test_export_import_round_trip(cli, ref, tmp_path, voices, monkeypatch):
    cli("voice", "add", "ana", ref(), "-t", "one")
    cli("voice", "add", "bo", ref(seed=1), "-t", "two")
    cli("voice", "add", "cy", ref(seed=2), "-t", "three")
    archive = tmp_path / "some.zip"
    result = cli("voice", "export", archive, "ana", "cy")
    assert result.exit_code == 0 and "exported 2 voice(s)" in result.stdout
    everything = tmp_path / "all.tar.gz"
    assert json.loads(cli("--json", "voice", "export", everything).stdout)["voices"] == ["ana", "bo", "cy"]

    monkeypatch.setenv("HIGGS_HOME", str(tmp_path / "elsewhere"))
    imported = cli("voice", "import", archive)
    assert imported.exit_code == 0 and "imported 2 voice(s): ana, cy" in imported.stdout
    cli("voice", "add", "cy", ref(seed=5), "-t", "another cy", "--force")  # the same name, another voice
    clash = cli("voice", "import", everything)
    assert clash.exit_code == 2 and "already has cy; nothing was imported" in clash.stderr
    assert [v["name"] for v in json.loads(cli("--json", "voice", "list").stdout)["voices"]] == ["ana", "cy"]
    assert cli("voice", "import", everything, "--force").exit_code == 0
    shown = json.loads(cli("--json", "voice", "show", "bo").stdout)
    assert shown["transcript"] == "two"
    assert (voices / "bo" / "audio.wav").read_bytes() == \
           (tmp_path / "elsewhere" / "voices" / "bo" / "audio.wav").read_bytes()


def test_import_bad_archive(cli, tmp_path):
    (tmp_path / "bad.zip").write_text("not an archive")
    result = cli("voice", "import", tmp_path / "bad.zip")
    assert result.exit_code == 2 and "not a .tar.gz or .zip archive" in result.stderr


def test_list_empty_and_broken_folder(cli, voices):
    empty = cli("voice", "list")
    assert empty.exit_code == 0 and "no voices yet" in empty.stdout
    (voices / "junk").mkdir(parents=True)
    result = cli("voice", "list")
    assert result.exit_code == 0 and "warning:" in result.stderr and "junk" in result.stderr
    data = json.loads(cli("--json", "voice", "list").stdout)
    assert data["voices"] == [] and data["skipped"][0]["reason"].startswith("voice.json is missing")


def test_locked_library(cli, ref, voices):
    voices.mkdir(parents=True)
    with exclusive_lock(voices / ".lock", what="test"):
        result = cli("voice", "add", "ana", ref(), "-t", "hi")
    assert result.exit_code == 1 and "voice library is in use" in result.stderr
    assert not (voices / "ana").exists()


def test_help(cli):
    result = cli("voice", "--help")
    assert result.exit_code == 0
    for command in ("add", "list", "show", "remove", "rename", "export", "import"):
        assert command in result.stdout


def test_export_into_the_library_is_refused(cli, ref, voices):
    cli("voice", "add", "ana", ref(), "-t", "one")
    before = sorted(str(p) for p in voices.rglob("*"))
    for args in (["voice", "export", voices / "ana" / "x.tar.gz", "ana"], ["voice", "export", voices / "all.zip"]):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert "inside the voice library" in result.stderr and "Traceback" not in result.output
    assert sorted(str(p) for p in voices.rglob("*")) == before
    as_json = cli("--json", "voice", "export", voices / "ana" / "x.zip")
    assert json.loads(as_json.stdout)["exit_code"] == 2


def test_links_that_point_nowhere_are_refused(cli, ref, tmp_path):
    cli("voice", "add", "ana", ref(), "-t", "one")
    out = tmp_path / "out.zip"
    out.symlink_to(tmp_path / "missing" / "out.zip")
    exported = cli("voice", "export", out)
    assert exported.exit_code == 2 and "points nowhere" in exported.stderr
    assert not (tmp_path / "missing").exists()
    imported = cli("voice", "import", out)
    assert imported.exit_code == 2 and "points nowhere" in imported.stderr


def test_voice_files_take_the_umask(cli, ref, voices, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        assert cli("voice", "add", "ana", ref(), "-t", "one").exit_code == 0
        assert cli("voice", "export", tmp_path / "all.tar.gz").exit_code == 0
    finally:
        os.umask(old)
    for path, expected in [(voices / "ana", 0o755), (voices / "ana" / "voice.json", 0o644),
                           (voices / "ana" / "audio.wav", 0o644), (tmp_path / "all.tar.gz", 0o644)]:
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


@pytest.fixture
def fake_model(fake_sessions):
    """`project render` in the CLI gets FakeSessions instead of loading a model."""
    from fakes import FakeSession

    from higgs_cli.sessions.identity import ModelIdentity

    identity = ModelIdentity(name=FakeSession.name, model_id=FakeSession.model_id, codec_id=FakeSession.codec_id)
    return fake_sessions.known(identity).made


SHOW = """\
version: 1
title: Voice Test
speakers:
  host:
    voice: narrator
script:
  - id: intro
    task: clone
    speaker: host
    lines:
      - Welcome to the show.
      - Thanks for listening.
"""


@pytest.mark.parametrize("again", ["import", "add"])
def test_a_voice_replaced_by_the_same_audio_keeps_the_project_rendered(cli, ref, tmp_path, fake_model, again):
    """Issue 16.3: after `voice import --force` (or `voice add --force`) of the same audio, status
    still says every line is rendered and the outputs are up to date, and a render generates nothing."""
    audio = ref()
    assert cli("voice", "add", "narrator", audio, "--transcript", "A short recording.").exit_code == 0
    show = tmp_path / "show"
    show.mkdir()
    (show / "project.yaml").write_text(SHOW, encoding="utf-8")
    result = cli("project", "render", show)
    assert result.exit_code == 0, result.output
    if again == "import":
        archive = tmp_path / "narrator.tar.gz"
        assert cli("voice", "export", archive, "narrator").exit_code == 0
        result = cli("voice", "import", archive, "--force")
    else:
        result = cli("voice", "add", "narrator", audio, "--transcript", "A short recording.", "--force")
    assert result.exit_code == 0, result.output

    result = cli("--json", "project", "status", show)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [line["state"] for line in report["lines"]] == ["rendered", "rendered"]
    assert report["outputs_current"] and report["unresolved_voices"] == []
    human = cli("project", "status", show).stdout
    assert "2 rendered" in human and "up to date" in human and "unknown" not in human

    result = cli("--json", "project", "render", show)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["generated"] == 0 and len(fake_model) == 1  # only the first render loaded


@pytest.mark.parametrize(("seconds", "warned"), [(1.0, "a longer take"), (5.0, None), (45.0, "a shorter take")])
def test_add_warns_outside_3_to_30_seconds_and_help_says_what_is_accepted(cli, ref, seconds, warned):
    """Issue 35.7: help and behaviour agree: 0.5-60 s is accepted, 3-30 s clones best, a warning outside."""
    result = cli("voice", "add", "ana", ref(seconds=seconds, rate=24000), "-t", "Hello there.")
    assert result.exit_code == 0, result.output
    if warned:
        assert "warning:" in result.stderr and "3-30 s" in result.stderr and warned in result.stderr
    else:
        assert "warning:" not in result.stderr
    help_text = " ".join(cli("voice", "add", "--help").stdout.split())
    assert "3-30 s clones best" in help_text and "0.5-60 s is accepted" in help_text


def test_removing_a_voice_that_does_not_exist_says_so_before_asking_for_yes(cli, ref):
    cli("voice", "add", "narrator", ref(), "-t", "hi")
    result = cli("voice", "remove", "narator")
    assert result.exit_code == 2
    assert "no voice named 'narator'" in result.stderr and "--yes" not in result.stderr
    assert "did you mean 'narrator'?" in result.stderr
