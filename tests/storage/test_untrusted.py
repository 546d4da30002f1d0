"""Issue 31: data that arrives from outside. The checks every door shares: higgs_cli/untrusted.py (text
that is not text, JSON that is not plain data) and the write and read helpers of higgs_cli/fsutil.py
(writes stay inside the folder named, reads are capped and of regular files only).

The voice library's doors: tests/voices/test_voice_hostile.py; the CLI's doors (a clear error,
nothing changed): tests/cli/test_bad_input.py.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from procs import quickly

from higgs_cli import untrusted
from higgs_cli.errors import UsageError
from higgs_cli.fsutil import atomic_write_bytes, check_writable, read_capped, read_capped_text, resolve_inside

# --- JSON that parses but is not plain data ------------------------------------------

HOSTILE_JSON = {
    "NaN": ('{"seed": NaN}', "NaN is not a number"),
    "Infinity": ('{"seed": Infinity}', "Infinity is not a number"),
    "-Infinity": ('{"seed": -Infinity}', "-Infinity is not a number"),
    "1e400": ('{"seed": 1e400}', "out of range"),
    "-1e400": ('{"x": [-1e400]}', "out of range"),
    "5,000 digits": ('{"seed": ' + "9" * 5000 + "}", "5000 digits is out of range"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "33 levels": ('{"a": ' * 33 + "1" + "}" * 33, "nested too deeply"),
    "lone surrogate": ('{"transcript": "hi \\ud800"}', "lone surrogate U+D800"),
    "lone surrogate in a key": ('{"\\udfff": 1}', "lone surrogate U+DFFF"),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSON))
def test_hostile_json_is_refused_as_malformed_json(case):
    text, message = HOSTILE_JSON[case]
    started = time.monotonic()
    with pytest.raises(json.JSONDecodeError, match=re.escape(message)) as caught:
        untrusted.loads(text)
    assert isinstance(caught.value, untrusted.BadJSON) and str(caught.value).startswith(caught.value.msg)
    assert time.monotonic() - started < 2


def test_plain_json_passes_unchanged():
    text = ('{"a": [1, -2, 3.5, 1e300, 18446744073709551615, "caf\\u00e9 \\ud83c\\udf89", null, true],'
            + '"b": ' + '{"c": ' * 30 + "0" + "}" * 30 + "}")
    assert untrusted.loads(text) == json.loads(text)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_no_setting_allows_a_number_that_is_not_finite(value):
    """Range.allows is the one range check of the CLI, projects, sheets and the server: NaN compared
    false with both bounds and passed; int(inf) raised OverflowError."""
    from higgs_cli.engine.request import SAMPLING_RANGES

    for name, rule in SAMPLING_RANGES.items():
        assert not rule.allows(value), name


def test_text_that_is_not_text():
    assert untrusted.text_problem("plain, naïve, 你好 🎉") is None
    assert "byte 0xFF at character 4" in untrusted.text_problem("hi \udcff")  # how argv carries a bad byte
    assert "lone surrogate U+D800 at character 1" in untrusted.text_problem("\ud800 x")
    with pytest.raises(UsageError, match="--scene holds a lone surrogate U.D800"):
        untrusted.check_utf8("a \ud800", "--scene")


# --- writes that a tampered file could redirect ----------------------------------------

@pytest.fixture
def folder(tmp_path):
    (tmp_path / "project" / "build").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path / "project"


@pytest.mark.parametrize(("target", "message"), [
    ("/etc/passwd", "is not inside"),
    ("../outside/x.txt", "is not inside"),
    ("build/../../outside/x.txt", "is not inside"),
    ("..", "is not inside"),
    (".", "is not inside"),
])
def test_resolve_inside_refuses_paths_that_leave_the_folder(folder, target, message):
    with pytest.raises(UsageError, match=message):
        resolve_inside(folder, target, what="build folder")


def test_resolve_inside_refuses_links_that_could_redirect_a_write(folder):
    (folder / "build" / "stems").symlink_to(folder.parent / "outside", target_is_directory=True)
    with pytest.raises(UsageError, match="goes through the symbolic link"):
        resolve_inside(folder, "build/stems/a.wav")
    (folder / "build" / "master.wav").symlink_to(folder.parent / "outside" / "x.wav")
    with pytest.raises(UsageError, match="goes through the symbolic link"):
        resolve_inside(folder, "build/master.wav")  # the target itself: a link, even one that points nowhere


def test_resolve_inside_accepts_what_is_inside(folder, tmp_path):
    assert resolve_inside(folder, "build/new/x.wav") == folder / "build" / "new" / "x.wav"
    assert resolve_inside(folder, folder / "build" / "x.wav") == folder / "build" / "x.wav"
    assert resolve_inside(folder, "build/./a/../x.wav") == folder / "build" / "x.wav"
    (tmp_path / "named").symlink_to(folder, target_is_directory=True)  # the folder the user named may be a link
    assert resolve_inside(tmp_path / "named", "build/x.wav") == tmp_path / "named" / "build" / "x.wav"


@pytest.mark.parametrize("special", ["fifo", "/dev/null"])
def test_a_write_never_replaces_a_fifo_or_a_device(tmp_path, special):
    if special == "fifo":
        special = tmp_path / "pipe"
        os.mkfifo(special)
    with pytest.raises(UsageError, match="not a regular file"):
        check_writable(special)
    with pytest.raises(UsageError, match="not a regular file"):
        atomic_write_bytes(special, b"x")
    assert not os.path.isfile(special)


# --- reads: regular files only, and a cap ---------------------------------------------------

def test_a_fifo_or_a_device_is_refused_without_being_read(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for path, kind in ((tmp_path / "pipe", "a FIFO"), ("/dev/zero", "a device"), (tmp_path, "a folder")):
        error = quickly(lambda path=path: read_capped(path, 1 << 20, what="transcript file"))
        assert isinstance(error, UsageError) and f"{kind}" in str(error), error


def test_a_file_over_the_cap_is_refused_and_one_under_it_read(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("x" * 101)
    with pytest.raises(UsageError, match="larger than 100 bytes"):
        read_capped(path, 100)
    assert read_capped(path, 101) == b"x" * 101
    path.write_bytes(b"ok \xff")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        read_capped_text(path, 100)
    with pytest.raises(UsageError, match="does not exist"):
        read_capped(tmp_path / "missing", 100)


# --- what a killed process leaves behind --------------------------------------------------

def _age(path, seconds=60):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_atomic_dir_removes_what_a_killed_builder_of_the_same_folder_left(tmp_path):
    from higgs_cli.fsutil import _hold as hold
    from higgs_cli.fsutil import atomic_dir, sweep_abandoned

    target = tmp_path / "show"
    dead = tmp_path / ".show.higgs-tmp.dead1"
    (dead / "voices").mkdir(parents=True)
    (dead / "project.yaml").write_text("half")
    _age(dead)
    alive = tmp_path / ".show.higgs-tmp.alive"
    alive.mkdir()
    _age(alive)
    young = tmp_path / ".show.higgs-tmp.young"
    young.mkdir()
    other = tmp_path / ".other.higgs-tmp.x"  # another target's: not this folder's business
    other.mkdir()
    _age(other)
    held = hold(alive)  # a builder that is still running
    try:
        with atomic_dir(target) as tmp:
            (tmp / "project.yaml").write_text("whole")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.higgs-tmp.x", ".show.higgs-tmp.alive",
                                                                     ".show.higgs-tmp.young", "show"])
    finally:
        os.close(held)
    assert sweep_abandoned(target) == [alive]  # its builder gone; the young one may still be starting
    assert (target / "project.yaml").read_text() == "whole"


@pytest.mark.slow
def test_a_project_import_killed_with_sigkill_leaves_nothing_after_the_next_run(cli, tmp_path):
    """Issue 31.7: kill -9 inside `project import`'s folder build left `.NAME.higgs-tmp.*` for good."""
    import signal
    import subprocess
    import sys

    dest = tmp_path / "game"
    code = ("import sys, time; from higgs_cli.fsutil import atomic_dir\n"
            f"with atomic_dir({str(dest)!r}) as tmp:\n"
            "    (tmp / 'project.yaml').write_text('half'); print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    [left] = list(tmp_path.glob(".game.higgs-tmp.*"))
    _age(left)
    sheet = tmp_path / "lines.csv"
    sheet.write_text("character,line\nAda,Hello there.\nBo,Hi.\n", encoding="utf-8")
    result = cli("project", "import", sheet, "-o", dest)
    assert result.exit_code == 0, result.output
    assert not left.exists() and (dest / "project.yaml").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
