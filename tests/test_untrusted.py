"""Issue 31: data that arrives from outside. The checks every door shares (higgs_cli/untrusted.py and
the write and read helpers of higgs_cli/fsutil.py), and the voice library's doors through them.

The same classes through the CLI (a clear error, nothing changed) are in test_bad_input.py.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time

import pytest
from test_voice_library import good, good_members, lib, make_tar, voice_files, wav  # noqa: F401 (fixtures)

from higgs_cli import untrusted
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.fsutil import atomic_write_bytes, check_writable, read_capped, read_capped_text, resolve_inside
from higgs_cli.voices.library import VoiceLibrary
from higgs_cli.voices.meta import check_name, is_voice_name

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

def _quickly(call, seconds=5.0):
    """Run `call` in a thread; fail if it has not finished in `seconds` (a FIFO would block forever)."""
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 (handed to the test)
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still reading after {seconds} s"
    return outcome[0]


def test_a_fifo_or_a_device_is_refused_without_being_read(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for path, kind in ((tmp_path / "pipe", "a FIFO"), ("/dev/zero", "a device"), (tmp_path, "a folder")):
        error = _quickly(lambda path=path: read_capped(path, 1 << 20, what="transcript file"))
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


# --- voice names ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ana\n", "ana\r\n", "\nana", "ana\x00", "ana ", "Ana", "a" * 65, "", "-ana"])
def test_voice_names_are_matched_whole(name):
    assert not is_voice_name(name)
    with pytest.raises(UsageError, match="not a valid voice name"):
        check_name(name)


def test_a_name_with_a_newline_reaches_no_folder(lib, wav):  # noqa: F811 (fixture)
    lib.add("ana", wav(), "hi")
    for name in ("ana\n", "ana\n\n"):
        with pytest.raises(UsageError, match="not a valid voice name"):
            lib.add(name, wav(), "hi")
        with pytest.raises(UsageError, match="no voice named"):
            lib.get(name)
        with pytest.raises(UsageError, match="no voice named"):
            lib.remove(name)
    assert [v.name for v in lib.list()] == ["ana"]


def test_an_archive_member_named_with_a_newline_is_refused(tmp_path, good):  # noqa: F811 (fixture)
    target = VoiceLibrary(tmp_path / "target")
    archive = make_tar(tmp_path / "nl.tar.gz", [*good_members(good), *good_members(good, name="x\n")])
    with pytest.raises(ValidationError, match="nothing was imported") as caught:
        target.import_archive(archive)
    assert any("not a valid voice name" in problem for problem in caught.value.problems)
    assert target.list() == []


# --- voice.json that is not plain data ---------------------------------------------------------

def _tampered(good, field, raw):  # noqa: F811 (fixture)
    """The good voice's voice.json with `field` set to the raw JSON text `raw`."""
    meta = json.loads(good["voice.json"])
    meta[field] = "@@"
    return json.dumps(meta).replace('"@@"', raw).encode()


TAMPERED_META = {
    "lone surrogate": ("transcript", '"fine \\ud800"', "lone surrogate"),
    "5,000 digits": ("duration", "9" * 5000, "5000 digits"),
    "deep nesting": ("description", "[" * 50_000 + "]" * 50_000, "nested too deeply"),
    "NaN": ("duration", "NaN", "NaN"),
    "1e400": ("duration", "1e400", "out of range"),
    "negative duration": ("duration", "-5", "'duration' must be"),
}


@pytest.mark.parametrize("case", list(TAMPERED_META))
def test_a_tampered_voice_json_is_refused_at_import(tmp_path, good, case):  # noqa: F811 (fixture)
    field, raw, message = TAMPERED_META[case]
    target = VoiceLibrary(tmp_path / "target")
    members = [("good/voice.json", _tampered(good, field, raw)), ("good/audio.wav", good["audio.wav"])]
    with pytest.raises(ValidationError, match="nothing was imported") as caught:
        target.import_archive(make_tar(tmp_path / "bad.tar.gz", members))
    assert any(message in problem for problem in caught.value.problems), caught.value.problems
    assert target.list() == [] and sorted(p.name for p in target.root.iterdir()) == [".lock"]


@pytest.mark.parametrize("case", list(TAMPERED_META))
def test_one_damaged_voice_does_not_break_the_library(lib, wav, case):  # noqa: F811 (fixture)
    field, raw, message = TAMPERED_META[case]
    lib.add("ana", wav(), "one")
    lib.add("bo", wav(seed=1), "two")
    meta = json.loads((lib.root / "bo" / "voice.json").read_text())
    meta[field] = "@@"
    (lib.root / "bo" / "voice.json").write_text(json.dumps(meta).replace('"@@"', raw))
    voices, skipped = lib.scan()
    assert [v.name for v in voices] == ["ana"] and [s.path.name for s in skipped] == ["bo"]
    assert message in skipped[0].reason and lib.get("ana").transcript == "one"
    with pytest.raises(ValidationError, match="is not a valid voice"):
        lib.get("bo")
    lib.remove("bo")  # a damaged voice can still be removed
    assert [v.name for v in lib.list()] == ["ana"]


def test_a_voice_json_that_is_a_fifo_or_huge_is_a_damaged_voice(lib, wav):  # noqa: F811 (fixture)
    lib.add("ana", wav(), "one")
    lib.add("bo", wav(seed=1), "two")
    (lib.root / "bo" / "voice.json").unlink()
    os.mkfifo(lib.root / "bo" / "voice.json")
    voices, skipped = _quickly(lib.scan)
    assert [v.name for v in voices] == ["ana"] and "not a regular file" in skipped[0].reason
    (lib.root / "bo" / "voice.json").unlink()
    with open(lib.root / "bo" / "voice.json", "wb") as handle:
        handle.truncate(64 << 20)  # sparse: must not be read whole
    assert "larger than 1 MiB" in lib.scan()[1][0].reason


def test_text_that_is_not_text_never_enters_the_library(lib, wav):  # noqa: F811 (fixture)
    with pytest.raises(UsageError, match="the transcript holds the byte 0xFF"):
        lib.add("ana", wav(), "hello \udcff")
    with pytest.raises(UsageError, match="the description holds a lone surrogate"):
        lib.add("ana", wav(), "hello", description="warm \ud800")
    assert lib.list() == []


# --- an import killed halfway ---------------------------------------------------------------

def test_an_import_killed_halfway_completes_when_run_again(lib, wav, tmp_path):  # noqa: F811 (fixture)
    """kill -9 between two voices of one import leaves the first installed: the same import again
    finishes the job without --force; a voice that differs still needs --force."""
    for name, seed in (("ana", 1), ("bo", 2), ("cy", 3)):
        lib.add(name, wav(seed=seed), f"voice {name}")
    archive = tmp_path / "all.zip"
    lib.export(None, archive)
    other = VoiceLibrary(tmp_path / "other")
    other.import_archive(archive)
    other.remove("bo")
    other.remove("cy")  # as an import killed after its first voice leaves the library
    (other.root / ".import.higgs-tmp.x1").mkdir()  # and its staging folder
    assert [v.name for v in other.import_archive(archive)] == ["ana", "bo", "cy"]
    assert [v.name for v in other.list()] == ["ana", "bo", "cy"]
    assert sorted(p.name for p in other.root.iterdir() if p.name.startswith(".")) == [".lock"]
    other.add("bo", wav(seed=9), "another bo", force=True)
    with pytest.raises(UsageError, match="already has bo; nothing was imported"):
        other.import_archive(archive)
    assert other.get("bo").transcript == "another bo"


# keep the fixtures imported above from being reported as unused by linters that do not know pytest
_ = (voice_files,)
