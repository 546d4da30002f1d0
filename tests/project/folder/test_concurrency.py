"""Two higgs processes at once: a second render or clean of a project, or a change to the voice
library while a render uses it, gets a clear "in use" error (exit 1) or waits its turn, and
neither corrupts the other's files.

The first process is a real `higgs` (tests/fake_cli.py: FakeSession, no torch) stopped at a
known point while it holds a lock; the second runs in this process through the `cli` fixture.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from fakes import write_voice
from procs import changes, paused, resume, run, snapshot

from higgs_cli.errors import LockedError
from higgs_cli.voices.library import VoiceLibrary


def _project(root, *, voice=False):
    root.mkdir(parents=True, exist_ok=True)
    speaker = "{voice: narrator}" if voice else "{description: calm voice}"
    (root / "project.yaml").write_text(f"""\
title: Show
speakers:
  host: {speaker}
script:
  - id: talk
    task: dialogue
    speaker: host
    lines: [One line., Another line., A third line.]
""")
    return root


@pytest.fixture
def library(_isolated_home, tmp_path):
    lib = VoiceLibrary(_isolated_home / "voices")
    lib.add("narrator", write_voice(tmp_path / "n.wav", freq=180.0), "A narrator.")
    return lib


@pytest.mark.slow
@pytest.mark.parametrize("second", [["project", "render"], ["project", "clean"]])
def test_a_second_render_or_clean_is_refused_while_a_render_runs(tmp_path, second):
    root = _project(tmp_path / "show")
    flag = tmp_path / "paused"
    first = paused(flag, ["--json", "project", "render", root], "generate:1")
    before = snapshot(root)
    result = run(["--json", *second, root])
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)
    assert "in use by another higgs process" in error["error"] and error["hint"]
    assert changes(before, snapshot(root)) == []

    done = resume(first, flag)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["generated"] == 3
    assert run(["project", "render", root]).returncode == 0  # the lock is free again


@pytest.mark.slow
def test_a_voice_cannot_be_replaced_while_a_render_encodes_it(cli, tmp_path, library):
    """A render encoding a library voice holds the library lock: `voice add --force` is refused
    (exit 1) instead of swapping the recording under it, and the codes cached belong to the
    recording that was encoded."""
    root = _project(tmp_path / "show", voice=True)
    flag = tmp_path / "paused"
    first = paused(flag, ["project", "render", root], "encode:1")
    before = snapshot(library.root)
    other = write_voice(tmp_path / "other.wav", freq=300.0)
    result = cli("voice", "add", "narrator", other, "--transcript", "Someone else.", "--force")
    assert result.exit_code == 1 and "in use by another higgs process" in result.output
    assert changes(before, snapshot(library.root), ignore=(".lock",)) == []
    assert resume(first, flag).returncode == 0

    cached = np.load(library.root / "narrator" / "codes" / "fake-codec-sha-1.npy")
    assert cli("voice", "add", "narrator", other, "--transcript", "Someone else.", "--force").exit_code == 0
    assert not (library.root / "narrator" / "codes").exists()  # the new recording starts without codes
    assert run(["project", "render", root]).returncode == 0
    assert not np.array_equal(np.load(library.root / "narrator" / "codes" / "fake-codec-sha-1.npy"), cached)


@pytest.mark.slow
def test_removing_a_voice_during_a_render_does_not_break_it(cli, tmp_path, library):
    root = _project(tmp_path / "show", voice=True)
    flag = tmp_path / "paused"
    first = paused(flag, ["--json", "project", "render", root], "generate:1")  # the voice is already encoded
    assert cli("voice", "remove", "narrator", "--yes").exit_code == 0
    done = resume(first, flag)
    assert done.returncode == 0 and json.loads(done.stdout)["generated"] == 3
    result = run(["project", "render", root])
    assert result.returncode == 2 and "no voice named 'narrator'" in result.stderr


@pytest.mark.slow
def test_a_second_voice_change_is_refused_while_one_is_written(cli, tmp_path, library):
    flag = tmp_path / "paused"
    ref = write_voice(tmp_path / "ana.wav", freq=250.0)
    first = paused(flag, ["voice", "add", "ana", ref, "--transcript", "Hello."], "write:audio.wav")
    before = snapshot(library.root)
    for args in (["voice", "add", "bea", ref, "--transcript", "Hi."], ["voice", "remove", "narrator", "--yes"],
                 ["voice", "rename", "narrator", "nora"]):
        result = cli(*args)
        assert result.exit_code == 1 and "the voice library is in use" in result.output, args
    assert changes(before, snapshot(library.root), ignore=(".lock",)) == []
    assert resume(first, flag).returncode == 0
    assert sorted(v.name for v in library.list()) == ["ana", "narrator"]


def test_encoding_waits_for_a_library_change_then_uses_the_new_recording(tmp_path, library, monkeypatch):
    """In-process: a library change holds the lock; codes() waits for it instead of failing."""
    import higgs_cli.voices.library as library_module

    started, release = threading.Event(), threading.Event()
    real_write = library_module.audio_io.write_audio

    def slow_write(path, audio, *args):
        started.set()
        release.wait(10)
        return real_write(path, audio, *args)

    monkeypatch.setattr(library_module.audio_io, "write_audio", slow_write)
    other = write_voice(tmp_path / "other.wav", seconds=1.5, freq=300.0)  # the first one is 1 s long
    changer = threading.Thread(target=library.add, args=("narrator", other, "Someone else."), kwargs={"force": True})
    changer.start()
    assert started.wait(10)
    seen = []
    encoder = threading.Thread(target=lambda: seen.append(library.codes("narrator", "c", lambda a: (
        np.full((8, 2), a.size // 100, np.int64)))))
    encoder.start()
    encoder.join(0.3)
    assert encoder.is_alive()  # waiting for the lock, not failing
    release.set()
    changer.join(10)
    encoder.join(10)
    assert seen and library.get("narrator").transcript == "Someone else."
    assert seen[0][0, 0] == 360  # encoded from the new 1.5 s recording, not the old one
    assert np.array_equal(seen[0], library.codes("narrator", "c", lambda a: pytest.fail("cached")))


def test_a_held_library_lock_times_out_with_a_clear_error(library, monkeypatch):
    import higgs_cli.voices.library as library_module
    from higgs_cli.fsutil import exclusive_lock

    monkeypatch.setattr(library_module, "CODES_LOCK_WAIT", 0.2)
    with exclusive_lock(library.root / ".lock", what="test"):
        with pytest.raises(LockedError, match="the voice library is in use"):
            library.codes("narrator", "c", lambda a: np.zeros((8, 1), np.int64))
