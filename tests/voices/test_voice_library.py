"""The voice library: add/get/list/remove/rename, archives, the codes cache, and safety."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from higgs_cli.errors import AudioError, LockedError, UsageError, ValidationError
from higgs_cli.fsutil import exclusive_lock
from higgs_cli.voices import archive as archive_module
from higgs_cli.voices import meta as meta_module
from higgs_cli.voices.library import VoiceLibrary, default_root

SR = 24000


def speech_like(seconds: float, rate: int = SR, seed: int = 0, amp: float = 0.3) -> np.ndarray:
    """A tone with a wobbling envelope: loud enough to be a voice, not silent anywhere inside."""
    t = np.arange(round(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * (150 + 10 * seed) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (amp * x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def wav(tmp_path):
    def make(name: str = "ref.wav", seconds: float = 2.0, rate: int = SR, channels: int = 1, seed: int = 0,
             pad: float = 0.0) -> Path:
        x = speech_like(seconds, rate, seed)
        if pad:
            silence = np.zeros(round(pad * rate), np.float32)
            x = np.concatenate([silence, x, silence])
        if channels > 1:
            x = np.tile(x[:, None], (1, channels))
        path = tmp_path / "inputs" / name
        path.parent.mkdir(exist_ok=True)
        sf.write(path, x, rate)
        return path

    return make


@pytest.fixture
def lib(tmp_path):
    return VoiceLibrary(tmp_path / "voices")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (hidden ones included, the lock file excluded) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_default_root_follows_higgs_home(_isolated_home, monkeypatch):
    assert default_root() == _isolated_home / "voices"
    assert VoiceLibrary().root == _isolated_home / "voices"
    monkeypatch.delenv("HIGGS_HOME")
    assert default_root().name == "voices" and "higgs" in str(default_root())


def test_add_converts_and_normalizes(lib, wav):
    voice = lib.add("ana", wav(rate=44100, channels=2, seconds=2.0), "  Hello   there. ", description=" warm ")
    assert voice.name == "ana" and voice.transcript == "Hello there." and voice.description == "warm"
    assert voice.duration == pytest.approx(2.0, abs=1e-3)
    assert voice.path == lib.root / "ana" and voice.audio_path == lib.root / "ana" / "audio.wav"
    info = sf.info(voice.audio_path)
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    meta = json.loads((voice.path / "voice.json").read_text())
    assert meta["name"] == "ana" and meta["sample_rate"] == SR and meta["format"] == 1
    assert meta["audio_sha256"] == voice.audio_sha256 and len(voice.audio_sha256) == 64
    audio = lib.load_audio("ana")
    assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=0.01)
    assert lib.get("ana") == voice


def test_add_trim(lib, wav):
    voice = lib.add("trimmed", wav(seconds=1.0, pad=2.0), "hi", trim=True)
    assert 1.0 <= voice.duration < 1.2
    assert lib.add("untrimmed", wav(seconds=1.0, pad=2.0), "hi").duration == pytest.approx(5.0, abs=1e-3)


@pytest.mark.parametrize("name", ["Ana", "-ana", "ana!", "", "a" * 65, "ana/../x", ".hidden"])
def test_bad_names(lib, wav, name):
    with pytest.raises(UsageError, match="not a valid voice name"):
        lib.add(name, wav(), "hi")
    assert not lib.root.exists() or lib.list() == []


def test_bad_name_hint_suggests_one(lib, wav):
    with pytest.raises(UsageError) as caught:
        lib.add("My Voice", wav(), "hi")
    assert "'my-voice'" in caught.value.hint


@pytest.mark.parametrize("transcript", ["", "   \n "])
def test_transcript_required(lib, wav, transcript):
    with pytest.raises(UsageError, match="transcript is empty"):
        lib.add("ana", wav(), transcript)


def test_reference_audio_checks(lib, wav, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR * 2, np.float32), SR)
    with pytest.raises(AudioError, match="is silent"):
        lib.add("a", silent, "hi")
    with pytest.raises(AudioError, match="at least 0.5 s"):
        lib.add("a", wav(seconds=0.3), "hi")
    with pytest.raises(AudioError, match="at most 60 s") as caught:
        lib.add("a", wav(seconds=61, rate=8000), "hi")
    assert "--trim" in caught.value.hint
    with pytest.raises(AudioError, match="after trimming"):
        lib.add("a", wav(seconds=0.2, pad=1.0), "hi", trim=True)
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio at all")
    with pytest.raises(AudioError, match="notes.wav"):
        lib.add("a", not_audio, "hi")
    assert lib.list() == []


def test_add_refuses_existing_and_leaves_it_byte_identical(lib, wav):
    lib.add("ana", wav(seed=1), "first")
    before = snapshot(lib.root)
    with pytest.raises(UsageError, match="already exists") as caught:
        lib.add("ana", wav(seed=2), "second")
    assert "--force" in caught.value.hint
    assert snapshot(lib.root) == before
    replaced = lib.add("ana", wav(seed=2), "second", force=True)
    assert replaced.transcript == "second" and snapshot(lib.root) != before
    assert [v.name for v in lib.list()] == ["ana"]
    assert [p.name for p in lib.root.iterdir() if p.name != ".lock"] == ["ana"]


def test_failure_mid_add_leaves_library_as_it_was(lib, wav, monkeypatch):
    lib.add("ana", wav(seed=1), "first")
    before = snapshot(lib.root)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(meta_module, "atomic_write_text", broken)
    for name, force in [("ana", True), ("bo", False)]:
        with pytest.raises(OSError, match="disk full"):
            lib.add(name, wav(seed=2), "second", force=force)
        assert snapshot(lib.root) == before
        assert sorted(p.name for p in lib.root.iterdir()) == [".lock", "ana"]


def test_list_sorted_and_skips_broken_folders(lib, wav):
    for name in ["zed", "ana", "mo"]:
        lib.add(name, wav(), f"I am {name}")
    (lib.root / "broken").mkdir()
    (lib.root / "badjson").mkdir()
    (lib.root / "badjson" / "voice.json").write_text("{nope")
    (lib.root / "Upper").mkdir()
    (lib.root / "stray.txt").write_text("not a voice")
    voices, skipped = lib.scan()
    assert [v.name for v in voices] == ["ana", "mo", "zed"]
    assert [v.name for v in lib.list()] == ["ana", "mo", "zed"]
    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == {"broken", "badjson", "Upper"}
    assert "voice.json is missing" in reasons["broken"]
    assert "not readable JSON" in reasons["badjson"]
    with pytest.raises(ValidationError, match="not a valid voice"):
        lib.get("broken")
    lib.remove("broken")  # a damaged voice can still be removed
    assert "broken" not in {s.path.name for s in lib.scan()[1]}


def test_get_unknown_suggests(lib, wav):
    with pytest.raises(UsageError, match="no voice named 'ana'") as caught:
        lib.get("ana")
    assert "library is empty" in caught.value.hint
    lib.add("narrator", wav(), "hi")
    with pytest.raises(UsageError) as caught:
        lib.get("narator")
    assert "did you mean 'narrator'?" in caught.value.hint
    with pytest.raises(UsageError) as caught:
        lib.get("../../etc")
    assert "higgs voice list" in caught.value.hint


def test_remove(lib, wav):
    lib.add("ana", wav(), "hi")
    lib.add("bo", wav(), "hi")
    lib.remove("ana")
    assert [v.name for v in lib.list()] == ["bo"]
    assert not (lib.root / "ana").exists()
    assert sorted(p.name for p in lib.root.iterdir()) == [".lock", "bo"]
    with pytest.raises(UsageError, match="no voice named 'ana'"):
        lib.remove("ana")


def test_rename(lib, wav):
    original = lib.add("ana", wav(seed=1), "hi", description="d")
    lib.codes("ana", "codec-a", lambda audio: np.ones((8, 5), np.int64))
    renamed = lib.rename("ana", "anna")
    assert renamed.name == "anna" and renamed.transcript == "hi" and renamed.description == "d"
    assert renamed.created == original.created and renamed.audio_sha256 == original.audio_sha256
    assert json.loads((renamed.path / "voice.json").read_text())["name"] == "anna"
    assert (renamed.path / "codes" / "codec-a.npy").is_file()  # the cache moves along
    assert [v.name for v in lib.list()] == ["anna"]

    lib.add("bo", wav(seed=2), "bo")
    before = snapshot(lib.root)
    with pytest.raises(UsageError, match="'bo' already exists"):
        lib.rename("anna", "bo")
    assert snapshot(lib.root) == before
    assert lib.rename("anna", "bo", force=True).transcript == "hi"
    assert [v.name for v in lib.list()] == ["bo"]
    with pytest.raises(UsageError, match="not a valid voice name"):
        lib.rename("bo", "Bad Name")
    with pytest.raises(UsageError, match="no voice named"):
        lib.rename("nobody", "x")


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".zip"])
def test_export_import_round_trip(lib, wav, tmp_path, suffix):
    lib.add("ana", wav(seed=1), "one", description="first")
    lib.add("bo", wav(seed=2, rate=16000), "two")
    lib.add("cy", wav(seed=3), "three")
    archive = tmp_path / f"voices{suffix}"
    assert [v.name for v in lib.export(["cy", "ana"], archive)] == ["cy", "ana"]

    other = VoiceLibrary(tmp_path / "other")
    imported = other.import_archive(archive)
    assert sorted(v.name for v in imported) == ["ana", "cy"]
    for name in ["ana", "cy"]:
        mine, theirs = lib.get(name), other.get(name)
        assert (theirs.transcript, theirs.description, theirs.created, theirs.audio_sha256) == \
               (mine.transcript, mine.description, mine.created, mine.audio_sha256)
        assert theirs.audio_path.read_bytes() == mine.audio_path.read_bytes()

    everything = tmp_path / f"all{suffix}"
    assert [v.name for v in lib.export(None, everything)] == ["ana", "bo", "cy"]
    other.add("cy", wav(seed=9), "not the same cy", force=True)
    before = snapshot(other.root)
    with pytest.raises(UsageError, match="already has cy; nothing was imported"):
        other.import_archive(everything)
    assert snapshot(other.root) == before
    assert [v.name for v in other.import_archive(everything, force=True)] == ["ana", "bo", "cy"]
    assert not [p for p in other.root.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_export_errors(lib, wav, tmp_path):
    with pytest.raises(UsageError, match="no voices to export"):
        lib.export(None, tmp_path / "a.zip")
    lib.add("ana", wav(), "hi")
    with pytest.raises(UsageError, match=r"\.tar\.gz, \.tgz or \.zip"):
        lib.export(None, tmp_path / "a.rar")
    with pytest.raises(UsageError, match="no voice named 'bob'"):
        lib.export(["ana", "bob"], tmp_path / "a.zip")
    assert not (tmp_path / "a.zip").exists()


def voice_files(lib: VoiceLibrary, name: str) -> dict[str, bytes]:
    folder = lib.root / name
    return {"voice.json": (folder / "voice.json").read_bytes(), "audio.wav": (folder / "audio.wav").read_bytes()}


def make_tar(path: Path, members: list[tuple[str, bytes]], *, links: list[tuple[str, str]] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


@pytest.fixture
def good(lib, wav):
    """The files of one valid voice, to build archives from."""
    lib.add("good", wav(), "fine")
    return voice_files(lib, "good")


def good_members(good, name="good"):
    meta = json.loads(good["voice.json"])
    meta["name"] = name
    return [(f"{name}/voice.json", json.dumps(meta).encode()), (f"{name}/audio.wav", good["audio.wav"])]


@pytest.mark.parametrize(("extra", "message"), [
    ([("/etc/evil/voice.json", b"{}")], "absolute path"),
    ([("../evil/voice.json", b"{}")], "leaves the archive"),
    ([("ok/../../evil", b"x")], "leaves the archive"),
    ([("Bad Name/voice.json", b"{}")], "not a valid voice name"),
    ([("good/voice.json", b"{}")], "appears twice"),
])
def test_unsafe_archives_install_nothing(tmp_path, good, extra, message):
    target = VoiceLibrary(tmp_path / "target")
    archive = make_tar(tmp_path / "bad.tar.gz", [*good_members(good), *extra])
    with pytest.raises(ValidationError, match="nothing was imported") as caught:
        target.import_archive(archive)
    assert any(message in problem for problem in caught.value.problems)
    assert target.list() == [] and sorted(p.name for p in target.root.iterdir()) == [".lock"]


def test_links_and_oversized_members_are_refused(tmp_path, good, monkeypatch):
    target = VoiceLibrary(tmp_path / "target")
    archive = make_tar(tmp_path / "link.tar.gz", good_members(good), links=[("other/voice.json", "/etc/passwd")])
    with pytest.raises(ValidationError) as caught:
        target.import_archive(archive)
    assert any("link" in problem for problem in caught.value.problems)

    zipped = tmp_path / "link.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for name, data in good_members(good):
            zf.writestr(name, data)
        link = zipfile.ZipInfo("other/audio.wav")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ValidationError) as caught:
        target.import_archive(zipped)
    assert any("link" in problem for problem in caught.value.problems)

    monkeypatch.setattr(archive_module, "MAX_MEMBER_BYTES", 50_000)
    with pytest.raises(ValidationError) as caught:
        target.import_archive(make_tar(tmp_path / "big.tar.gz", good_members(good)))
    assert any("larger than 50000 bytes" in problem for problem in caught.value.problems)

    # the total is counted while copying, whatever the headers claim
    monkeypatch.setattr(archive_module, "MAX_MEMBER_BYTES", 16 * 1024 * 1024)
    monkeypatch.setattr(archive_module, "MAX_ARCHIVE_BYTES", len(good["audio.wav"]) + 2000)
    two = make_tar(tmp_path / "two.tar.gz", [*good_members(good), *good_members(good, "second")])
    with pytest.raises(ValidationError) as caught:
        target.import_archive(two)
    assert [p.split(":")[0] for p in caught.value.problems] == ["'second/audio.wav'"]
    assert target.list() == []


def test_invalid_voice_in_archive_installs_none(tmp_path, good, wav):
    target = VoiceLibrary(tmp_path / "target")
    tampered = good_members(good, "second")
    tampered[1] = ("second/audio.wav", tampered[1][1][:-100] + b"\0" * 100)
    archive = make_tar(tmp_path / "mixed.tar.gz", [*good_members(good), *tampered])
    with pytest.raises(ValidationError, match="damaged voices") as caught:
        target.import_archive(archive)
    assert caught.value.problems == ["second: audio.wav does not match its checksum"]
    assert target.list() == []

    meta_only = make_tar(tmp_path / "meta_only.tar.gz", [good_members(good)[0]])
    with pytest.raises(ValidationError) as caught:
        target.import_archive(meta_only)
    assert caught.value.problems == ["good: audio.wav is missing"]
    with pytest.raises(ValidationError, match="holds no voices"):
        target.import_archive(make_tar(tmp_path / "empty.tar.gz", [("readme.txt", b"hi")]))
    assert target.list() == []


def test_not_an_archive(lib, tmp_path):
    (tmp_path / "x.zip").write_text("plain text")
    with pytest.raises(UsageError, match="not a .tar.gz or .zip archive"):
        lib.import_archive(tmp_path / "x.zip")
    with pytest.raises(UsageError, match="does not exist"):
        lib.import_archive(tmp_path / "missing.zip")


def test_truncated_archive_is_damaged(lib, wav, tmp_path):
    lib.add("ana", wav(), "hi")
    archive = tmp_path / "a.tar.gz"
    lib.export(None, archive)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    other = VoiceLibrary(tmp_path / "other")
    with pytest.raises(ValidationError, match="nothing was imported"):
        other.import_archive(archive)
    assert other.list() == []


def test_codes_are_cached(lib, wav):
    lib.add("ana", wav(), "hi")
    calls = []

    def encode(audio):
        calls.append(audio)
        return np.arange(16, dtype=np.int64).reshape(8, 2)

    first = lib.codes("ana", "higgs-tok-v2", encode)
    second = lib.codes("ana", "higgs-tok-v2", encode)
    assert len(calls) == 1 and calls[0].dtype == np.float32 and calls[0].size == 2 * SR
    assert np.array_equal(first, second) and second.shape == (8, 2)
    assert (lib.root / "ana" / "codes" / "higgs-tok-v2.npy").is_file()
    lib.codes("ana", "other-codec", encode)
    assert len(calls) == 2  # each codec has its own cache


@pytest.mark.parametrize("corrupt", [
    lambda p: p.write_bytes(b"garbage"),
    lambda p: p.write_bytes(p.read_bytes()[:-5]),
    lambda p: np.save(p, np.zeros((8, 2), np.float32)),
    lambda p: np.save(p, np.zeros(5, np.int64)),
    lambda p: np.save(p, -np.ones((8, 2), np.int64)),
])
def test_corrupt_codes_cache_is_reencoded(lib, wav, corrupt):
    lib.add("ana", wav(), "hi")
    calls = []

    def encode(audio):
        calls.append(1)
        return np.full((8, 3), 7, dtype=np.int32)

    lib.codes("ana", "c", encode)
    cache = lib.root / "ana" / "codes" / "c.npy"
    corrupt(cache)
    assert np.array_equal(lib.codes("ana", "c", encode), np.full((8, 3), 7))
    assert len(calls) == 2
    assert np.array_equal(np.load(cache), np.full((8, 3), 7))  # replaced
    assert sorted(p.name for p in cache.parent.iterdir()) == ["c.npy"]  # no temporary left


def test_codes_reject_bad_codec_id_and_bad_encoder_output(lib, wav):
    lib.add("ana", wav(), "hi")
    with pytest.raises(ValueError):
        lib.codes("ana", "../x", lambda a: np.zeros((8, 1), np.int64))
    with pytest.raises(ValueError, match="unusable codes"):
        lib.codes("ana", "c", lambda a: np.zeros(3))
    assert not (lib.root / "ana" / "codes" / "c.npy").exists()


def test_damaged_audio_is_detected(lib, wav):
    voice = lib.add("ana", wav(), "hi")
    data = bytearray(voice.audio_path.read_bytes())
    data[-10:] = b"\x01" * 10
    voice.audio_path.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match="damaged"):
        lib.load_audio("ana")


def test_lock_held_raises_locked_error(lib, wav, tmp_path):
    lib.add("ana", wav(), "hi")
    before = snapshot(lib.root)
    with exclusive_lock(lib.root / ".lock", what="test"):
        for mutate in [lambda: lib.add("bo", wav(), "hi"), lambda: lib.remove("ana"),
                       lambda: lib.rename("ana", "bo"), lambda: lib.import_archive(tmp_path / "x.zip")]:
            (tmp_path / "x.zip").write_bytes(b"")
            with pytest.raises(LockedError, match="the voice library is in use"):
                mutate()
        assert [v.name for v in lib.list()] == ["ana"]  # reading needs no lock
    assert snapshot(lib.root) == before


# -- the codes cache on its own (what a project's recordings use too) ------------

def test_codes_cache_in_any_folder(tmp_path):
    from higgs_cli.voices.codes import CodesCache

    cache = CodesCache(tmp_path / "project" / ".higgs" / "codes")  # made on first write
    loads, encodes = [], []

    def load():
        loads.append(1)
        return np.zeros(SR, np.float32)

    def encode(audio):
        encodes.append(audio.size)
        return np.full((8, 4), 3, np.int64)

    assert cache.get("k1") is None
    assert np.array_equal(cache.get_or_encode("k1", load, encode), np.full((8, 4), 3))
    assert np.array_equal(cache.get_or_encode("k1", lambda: pytest.fail("loaded"), encode), np.full((8, 4), 3))
    assert loads == [1] and encodes == [SR]
    assert sorted(p.name for p in cache.folder.iterdir()) == ["k1.npy"]

    np.save(cache.path("k1"), np.full((8, 4), -2, np.int64))  # damaged: out of range
    assert cache.get("k1") is None
    cache.get_or_encode("k1", load, encode)
    assert np.array_equal(np.load(cache.path("k1")), np.full((8, 4), 3)) and len(encodes) == 2
    assert sorted(p.name for p in cache.folder.iterdir()) == ["k1.npy"]  # rewritten in one rename

    assert np.array_equal(cache.get_or_encode("k2", load, encode, store=False), np.full((8, 4), 3))
    assert not cache.path("k2").exists()
    with pytest.raises(ValueError, match="unusable codes"):
        cache.get_or_encode("k3", load, lambda a: np.zeros((8, 2), np.float32))
    assert not cache.path("k3").exists()
    for key in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="cannot be a file name"):
            cache.get(key)


def test_codes_cache_that_cannot_be_written_still_gives_codes(tmp_path):
    from higgs_cli.voices.codes import CodesCache

    (tmp_path / "file").write_text("not a folder")
    cache = CodesCache(tmp_path / "file" / "codes")
    assert cache.put("k", np.ones((2, 2), np.int64)) is False
    assert cache.get_or_encode("k", lambda: np.zeros(4), lambda a: np.ones((2, 2), np.int64)).shape == (2, 2)


# -- paths: archives never inside the library, links that point nowhere, modes ---

@pytest.mark.parametrize("where", ["voices/ana/x.tar.gz", "voices/x.zip", "voices/ana/codes/x.tgz",
                                   "link-to-ana/x.zip"])
def test_export_inside_the_library_is_refused(lib, wav, tmp_path, where):
    lib.add("ana", wav(), "hi")
    lib.add("bo", wav(seed=1), "hi")
    (lib.root / "ana" / "codes").mkdir()
    (tmp_path / "link-to-ana").symlink_to(lib.root / "ana")
    before = snapshot(lib.root)
    for names in (["ana"], None):
        with pytest.raises(UsageError, match="inside the voice library") as caught:
            lib.export(names, tmp_path / where)
        assert "outside the library" in caught.value.hint
    assert snapshot(lib.root) == before


def test_export_to_a_link_that_points_nowhere_is_refused(lib, wav, tmp_path):
    lib.add("ana", wav(), "hi")
    link = tmp_path / "out.zip"
    link.symlink_to(tmp_path / "gone" / "out.zip")
    with pytest.raises(UsageError, match="points nowhere"):
        lib.export(None, link)
    assert link.is_symlink() and not (tmp_path / "gone").exists()


def test_import_from_a_link_that_points_nowhere_is_refused(lib, tmp_path):
    link = tmp_path / "in.zip"
    link.symlink_to(tmp_path / "gone.zip")
    with pytest.raises(UsageError, match="link that points nowhere"):
        lib.import_archive(link)


def test_a_library_root_that_is_a_dangling_link_or_a_file_is_refused(tmp_path, wav):
    link = tmp_path / "voices"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="points nowhere"):
        VoiceLibrary(link).add("ana", wav(), "hi")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "plain").write_text("x")
    for change in (lambda lib: lib.add("ana", wav(), "hi"), lambda lib: lib.import_archive(tmp_path / "plain")):
        with pytest.raises(UsageError, match="is not a folder"):
            change(VoiceLibrary(tmp_path / "plain"))


def test_library_files_take_the_umask(lib, wav, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        lib.add("ana", wav(), "hi")
        lib.codes("ana", "c", lambda a: np.ones((8, 2), np.int64))
        lib.export(None, tmp_path / "all.zip")
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in
                 [lib.root / "ana", lib.root / "ana" / "voice.json", lib.root / "ana" / "audio.wav",
                  lib.root / "ana" / "codes" / "c.npy", tmp_path / "all.zip"]}
        other = VoiceLibrary(tmp_path / "other")
        other.import_archive(tmp_path / "all.zip")
        modes.update({p: stat.S_IMODE(p.stat().st_mode) for p in
                      [other.root / "ana", other.root / "ana" / "voice.json", other.root / "ana" / "audio.wav"]})
    finally:
        os.umask(old)
    assert {str(p): m for p, m in modes.items() if m != (0o755 if p.is_dir() else 0o644)} == {}


# -- the home folder ---------------------------------------------------------------

def test_one_module_owns_the_home_folder(_isolated_home, monkeypatch):
    from higgs_cli import home
    from higgs_cli.engine.decode.aot import cache_root

    assert (home.voices_dir(), home.compiled_dir()) == (_isolated_home / "voices", _isolated_home / "compiled")
    assert cache_root() == home.compiled_dir() and default_root() == home.voices_dir()
    monkeypatch.setenv("HIGGS_HOME", "~/somewhere")
    assert home.voices_dir() == Path.home() / "somewhere" / "voices"
    monkeypatch.setenv("HIGGS_HOME", "")  # empty counts as unset
    import platformdirs

    assert home.voices_dir() == Path(platformdirs.user_data_dir("higgs")) / "voices"
    assert home.compiled_dir() == Path(platformdirs.user_cache_dir("higgs")) / "compiled"
    package = Path(home.__file__).parent
    readers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                     if ("HIGGS_HOME" in (text := p.read_text(encoding="utf-8")) and "environ" in text)
                     or "import platformdirs" in text)
    assert readers == ["home.py"]


def _encoder(calls: list):
    def encode(audio):
        calls.append(1)
        return np.full((8, 3), 7, dtype=np.int32)
    return encode


@pytest.mark.parametrize("how", ["add", "import"])
def test_replacing_a_voice_with_the_same_audio_keeps_its_codes(lib, wav, tmp_path, how):
    """`voice add/import --force` of the same recording keeps the cached codes (issue 16.3): they
    depend only on the audio, and without them status cannot tell the lines rendered."""
    lib.add("ana", wav(), "hi")
    calls: list = []
    lib.codes("ana", "c", _encoder(calls))
    if how == "add":
        replaced = lib.add("ana", wav(), "a new transcript", force=True)
        assert replaced.transcript == "a new transcript"
    else:
        archive = tmp_path / "ana.tar.gz"
        lib.export(["ana"], archive)
        lib.import_archive(archive, force=True)
    assert (lib.root / "ana" / "codes" / "c.npy").is_file()
    lib.codes("ana", "c", _encoder(calls))
    assert len(calls) == 1  # not encoded again


@pytest.mark.parametrize("how", ["add", "import"])
def test_replacing_a_voice_with_other_audio_drops_its_codes(lib, wav, tmp_path, how):
    lib.add("ana", wav(), "hi")
    calls: list = []
    lib.codes("ana", "c", _encoder(calls))
    if how == "add":
        lib.add("ana", wav(seed=3), "hi", force=True)
    else:
        other = VoiceLibrary(tmp_path / "other")
        other.add("ana", wav(seed=3), "hi")
        archive = tmp_path / "ana.zip"
        other.export(["ana"], archive)
        lib.import_archive(archive, force=True)
    assert not (lib.root / "ana" / "codes").exists()
    lib.codes("ana", "c", _encoder(calls))
    assert len(calls) == 2
