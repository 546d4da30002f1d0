"""Issue 31 through the voice library's doors: names matched whole, voice.json read as untrusted (a
damaged voice is reported, the rest of the library stays usable), an import killed halfway.

The shared checks themselves: tests/storage/test_untrusted.py.
"""

from __future__ import annotations

import json
import os

import pytest
from procs import quickly
from test_voice_library import good, good_members, lib, make_tar, voice_files, wav  # noqa: F401 (fixtures)

from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.voices.library import VoiceLibrary
from higgs_cli.voices.meta import check_name, is_voice_name

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
    voices, skipped = quickly(lib.scan)
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
