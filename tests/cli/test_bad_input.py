"""Bad input through the real CLI: each case ends with a clear message, exit code 1 or 2 and no
traceback, and every file it could have touched (the project, the voice library, folders
outside) is byte for byte as it was before.

Covered elsewhere and not repeated here: each loader problem's exact position
(test_project_load.py), `higgs say` flag and text errors and missing model folders
(test_cli_say_model.py), unsafe voice archives (test_voice_library.py), reading
odd audio at the library level (test_audio_io.py).
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeSession, write_voice
from procs import changes, snapshot

SR = 24_000
LOCKS = ("render.lock", ".lock")  # lock files may appear; nothing else may

GOOD = """\
title: Show
speakers:
  host: {description: calm voice}
  guest: {audio: voices/guest.wav, transcript: Hello there.}
script:
  - id: talk
    task: dialogue
    lines:
      - host: Welcome to the show.
      - guest: Thanks for having me.
"""


@pytest.fixture
def sessions(fake_sessions):
    """The CLI gets a FakeSession instead of loading a model; the list shows whether one was asked for."""
    return fake_sessions.each(lambda: FakeSession(is_random=True)).made


@pytest.fixture
def show(tmp_path, cli, sessions):
    """A project rendered once (so it has a cache and a build), and a folder beside it."""
    root = tmp_path / "show"
    root.mkdir()
    (root / "project.yaml").write_text(GOOD)
    write_voice(root / "voices" / "guest.wav")
    assert cli("project", "render", root).exit_code == 0
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.txt").write_text("mine")
    sessions.clear()
    return root


@pytest.fixture
def refused(cli, tmp_path, _isolated_home):
    """Run the CLI and check that it refused cleanly and changed nothing under tmp_path or HIGGS_HOME."""

    def check(*args, code: int, message: str):
        before = snapshot(tmp_path, _isolated_home)
        result = cli(*args)
        assert result.exit_code == code, result.output
        assert message in result.output, result.output
        assert "Traceback" not in result.output and "unexpected" not in result.output
        assert changes(before, snapshot(tmp_path, _isolated_home), ignore=LOCKS) == []
        return result

    return check


# --- project files ------------------------------------------------------------------

def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


PROJECTS = {
    "malformed YAML": (GOOD + "  - [unclosed\n", "malformed YAML"),
    "wrong type": (GOOD + "defaults: {temperature: hot}\n", "must be a number"),
    "unknown top key": (_replace("title:", "titel:"), "did you mean 'title'?"),
    "unknown section key": (_replace("    lines:", "    line:"), "did you mean 'lines'?"),
    "unknown speaker": (_replace("- host: Welcome", "- hots: Welcome"), "unknown speaker 'hots'; did you mean 'host'?"),
    "empty text": (_replace("Welcome to the show.", '""'), "is empty"),
    "enormous text": (_replace("Welcome to the show.", "word " * 4000), "characters long"),
    "control characters": (_replace("Welcome to the show.", '"Welcome\\a to the show."'),
                           "control character U+0007"),
    "only invisible characters": (_replace("Welcome to the show.", '"\\u200b\\u200b"'), "nothing to speak"),
    "only format characters": (_replace("Welcome to the show.", '"\\u200d\\u2060\\u200e\\u00ad"'),
                               "nothing to speak"),
    "deep nesting": (GOOD + "scene: " + "[" * 2000 + "]" * 2000 + "\n", "nested too deeply"),
    "python tag": (_replace("title: Show", "title: !!python/object/apply:os.system [touch pwned]"),
                   "unsupported YAML tag"),
    "audio outside (..)": (_replace("voices/guest.wav", "../outside/guest.wav"), "leaves the project folder"),
    "audio outside (absolute)": (_replace("voices/guest.wav", "/etc/hostname"), "is an absolute path"),
    "audio outside (link)": (_replace("voices/guest.wav", "voices/link.wav"), "outside the project folder"),
    "project too long": (GOOD + "output: {max_hours: 0.0001}\n", "output.max_hours is 0.0001"),
    # aliases and merge keys (issue 16.14): no unbounded expansion, no recursion
    "a merge into itself": (GOOD + "defaults: &d {temperature: 0.5, <<: *d}\n", "contains itself through an alias"),
    "a field that contains itself": (_replace("    task: dialogue\n",
                                              "    task: dialogue\n    context_lines: &c [*c]\n"),
                                     "a list contains itself through an alias"),
    "merges of merges": (GOOD + "defaults:\n  <<: [&m0 {temperature: 0.5}"
                         + "".join(f", &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}" for i in range(1, 9)) + "]\n",
                         "expand this file into more than 100000 values"),
    "a chain of merges": (GOOD + "defaults:\n  <<: [&m0 {temperature: 0.5}"
                          + "".join(f", &m{i} {{<<: *m{i - 1}}}" for i in range(1, 2000)) + "]\n",
                          "counting what aliases (*name) and merges (<<) bring in"),
    # issue 31.4: a respelling of 200 characters for one letter made a valid line 480,000 characters long
    "a lexicon bomb": (_replace("Welcome to the show.", " ".join(["a"] * 2400)) + "lexicon: {a: " + "x" * 200 + "}\n",
                       "text is 482399 characters long once the lexicon respells it (4799 as written)"),
    # issue 31.5/31.6: text that is not text, numbers that are not numbers of ours, wherever they are
    "a lone surrogate": (_replace("Welcome to the show.", '"Welcome \\ud800 to the show."'),
                         "project.yaml:9:15: the value holds a lone surrogate U+D800"),
    "a lone surrogate in a key": (GOOD + 'output: {"\\udc00": 1}\n', "the value holds a lone surrogate U+DC00"),
    "a lone surrogate in a task field": (_replace("    task: dialogue\n", '    task: dialogue\n    x: ["\\ud800"]\n'),
                                         "lone surrogate"),
    "5,000 digits": (GOOD + "defaults: {seed: " + "9" * 5000 + "}\n", "a number of 5000 digits is out of range"),
    "5,000 digits in a task field": (_replace("    task: dialogue\n", "    task: dialogue\n    x: [" + "9" * 5000
                                              + "]\n"), "a number of 5000 digits is out of range"),
    "an infinite float": (GOOD + "defaults: {temperature: .inf}\n", ".inf is not a finite number"),
    "1e400": (GOOD + "defaults: {top_p: 1.0e+400}\n", "1.0e+400 is not a finite number"),
    "NaN": (GOOD + "defaults: {temperature: .nan}\n", ".nan is not a finite number"),
    # issue 16.13: YAML reads `[laugh] hello` as a list followed by text
    "unquoted marker first": (_replace("- host: Welcome", "- host: [laugh] Welcome"),
                              'text that starts with "[" in quotes, e.g. - host: "[laugh] hello"'),
}


@pytest.mark.parametrize("case", list(PROJECTS))
@pytest.mark.parametrize("command", ["validate", "render"])
def test_a_bad_project_file_is_refused_and_nothing_changes(show, refused, sessions, case, command):
    text, message = PROJECTS[case]
    (show / "project.yaml").write_text(text, encoding="utf-8")
    (show.parent / "outside" / "guest.wav").write_bytes((show / "voices" / "guest.wav").read_bytes())
    (show / "voices" / "link.wav").symlink_to(show.parent / "outside" / "guest.wav")
    refused("project", command, show, code=2, message=message)
    assert sessions == []  # refused before any model was loaded
    assert not (show / "pwned").exists() and not os.path.exists("pwned")


def test_not_utf8_and_oversized_project_files(show, refused):
    (show / "project.yaml").write_bytes(GOOD.encode("utf-16"))
    refused("project", "render", show, code=2, message="not valid UTF-8")
    with open(show / "project.yaml", "wb") as handle:
        handle.truncate(11 * 1024 * 1024)  # sparse: the loader must not read it all
    refused("project", "validate", show, code=2, message="a project file is at most")


def test_a_fifo_as_the_project_file_is_refused_at_once(show, refused):
    from procs import quickly

    (show / "project.yaml").unlink()
    os.mkfifo(show / "project.yaml")
    quickly(lambda: refused("project", "validate", show, code=2, message="no project.yaml"), seconds=30)
    quickly(lambda: refused("project", "validate", show / "project.yaml", code=2, message="is not a file"), seconds=30)


def test_mixed_scripts_render(show, cli):
    text = "Hello 你好, مرحبا! Привет, שלום 🎉 — naïve café."
    (show / "project.yaml").write_text(_replace("Welcome to the show.", json.dumps(text, ensure_ascii=False)),
                                       encoding="utf-8")
    result = cli("--json", "project", "render", show)
    assert result.exit_code == 0, result.output
    srt = (show / "build" / "show.srt").read_text(encoding="utf-8")
    assert text in srt.replace("\n", " ")  # wrapped to two lines at a space (issue 16.6)


def test_an_unknown_library_voice_is_refused_before_the_model_loads(show, cli, refused, sessions, tmp_path):
    write_voice(tmp_path / "n.wav")
    assert cli("voice", "add", "narrator", tmp_path / "n.wav", "--transcript", "A test.").exit_code == 0
    (show / "project.yaml").write_text(_replace("{description: calm voice}", "{voice: narator}"))
    validated = cli("project", "validate", show)  # a warning at validate time, not an error (issue 16.13)
    assert validated.exit_code == 0, validated.output
    assert "warning:" in validated.stderr and "speaker 'host'" in validated.stderr
    assert "no voice named 'narator'" in validated.stderr and "did you mean 'narrator'?" in validated.stderr
    data = json.loads(cli("--json", "project", "validate", show).stdout)
    assert data["valid"] is True and len(data["warnings"]) == 1 and "project.yaml:3:" in data["warnings"][0]
    result = refused("project", "render", show, code=2, message="no voice named 'narator'")
    assert "did you mean 'narrator'?" in result.output and "speaker 'host'" in result.output
    assert sessions == []


# --- audio --------------------------------------------------------------------------

def _wav_header(rate: int, channels: int, frames: int) -> bytes:
    data = frames * channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
            + b"data" + struct.pack("<I", data))


def _sparse_wav(path, rate, channels, seconds):
    """A WAV that declares `seconds` of audio without taking the disk space (a sparse file of zeros)."""
    header = _wav_header(rate, channels, rate * seconds)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + rate * seconds * channels * 2)
    return path


def _tone(seconds=2.0, rate=SR, channels=1, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    mono = amp * np.sin(2 * np.pi * 220 * t)
    return np.tile(mono[:, None], (1, channels)) if channels > 1 else mono


BAD_AUDIO = {
    "empty": (lambda p: p.write_bytes(b""), "empty file"),
    "not audio": (lambda p: p.write_text("just some text, not audio\n" * 20), "not a readable audio file"),
    "corrupt header": (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(64)),
                       "not a readable audio file"),
    "header only": (lambda p: p.write_bytes(_wav_header(SR, 1, 0)), "no audio samples"),
    "silent": (lambda p: sf.write(p, np.zeros(2 * SR), SR), "is silent"),
    "too short": (lambda p: sf.write(p, _tone(0.2), SR), "at least 0.5 s"),
    "NaN samples": (lambda p: sf.write(p, np.full(SR, np.nan, np.float32), SR, subtype="FLOAT"), "NaN"),
    "an hour long": (lambda p: _sparse_wav(p, 8000, 1, 3600), "3600.0 s long"),
    "absurd sample rate": (lambda p: _sparse_wav(p, 4_000_000, 1, 2), "sample rate of 4000000 Hz"),
    "a folder": (lambda p: p.mkdir(), "is a folder"),
}


@pytest.mark.parametrize("case", list(BAD_AUDIO))
def test_bad_reference_audio_is_refused_by_voice_add(refused, tmp_path, case):
    make, message = BAD_AUDIO[case]
    path = tmp_path / "ref.wav"
    make(path)
    refused("voice", "add", "ana", path, "--transcript", "Hello there.", code=1, message=message)


@pytest.mark.parametrize("case", ["not audio", "an hour long", "silent"])
def test_bad_project_recording_fails_the_render_and_changes_nothing(show, refused, case):
    make, message = BAD_AUDIO[case]
    (show / "voices" / "guest.wav").unlink()
    make(show / "voices" / "guest.wav")
    shutil.rmtree(show / ".higgs" / "codes")  # so the recording is read again
    refused("project", "render", show, code=1, message=message)


GOOD_AUDIO = {
    "clipped": (lambda p: sf.write(p, np.clip(_tone(amp=3.0), -1, 1), SR)),
    "8 kHz": (lambda p: sf.write(p, _tone(rate=8000), 8000)),
    "96 kHz": (lambda p: sf.write(p, _tone(rate=96000), 96000)),
    "6 channels": (lambda p: sf.write(p, _tone(channels=6), SR)),
    "float, over full scale": (lambda p: sf.write(p, _tone(amp=1.5).astype(np.float32), SR, subtype="FLOAT")),
}


@pytest.mark.parametrize("case", list(GOOD_AUDIO))
def test_odd_but_usable_audio_becomes_a_24k_mono_reference(cli, tmp_path, _isolated_home, case):
    path = tmp_path / "ref.wav"
    GOOD_AUDIO[case](path)
    result = cli("--json", "voice", "add", "ana", path, "--transcript", "Hello there.")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["duration"] == pytest.approx(2.0, abs=0.01)
    info = sf.info(str(_isolated_home / "voices" / "ana" / "audio.wav"))
    assert (info.samplerate, info.channels) == (SR, 1)


# --- where outputs go ----------------------------------------------------------------

def test_output_dir_that_is_a_file_or_a_foreign_folder_is_refused(show, refused, tmp_path):
    refused("project", "render", show, "--output-dir", tmp_path / "outside" / "precious.txt", code=2,
            message="is a file")
    result = refused("project", "render", show, "--output-dir", tmp_path / "outside", code=2,
                     message="not a higgs render")
    assert "choose an empty or a new folder" in result.output
    refused("project", "render", show, "--output-dir", show, code=2, message="not a higgs render")


def test_output_dir_outside_the_project_is_fine_when_new_or_a_previous_render(show, cli, tmp_path):
    out = tmp_path / "exports" / "episode"
    assert cli("project", "render", show, "--output-dir", out).exit_code == 0
    assert (out / "manifest.json").is_file() and (out / "show.wav").is_file()
    assert cli("project", "render", show, "--output-dir", out).exit_code == 0  # its own earlier output


@pytest.mark.parametrize("folder", ["build", ".higgs", ".higgs/cache"])
@pytest.mark.parametrize("command", ["render", "clean"])
def test_links_planted_in_a_project_are_not_followed(show, refused, tmp_path, folder, command):
    """A downloaded project whose build/ or .higgs/ points into your files cannot write or delete there."""
    victim = tmp_path / "outside"
    for name in ("cache", "codes", "stems"):
        (victim / name).mkdir()
        (victim / name / "keep.txt").write_text("mine")
    target = show / folder
    shutil.rmtree(target)
    target.symlink_to(victim, target_is_directory=True)
    refused("project", command, show, code=2, message="is a symbolic link")


def test_a_link_planted_inside_build_is_replaced_never_written_through(show, cli, tmp_path):
    """Issue 31.1: build/stems pointing at your folder: the render swaps in its own folder; yours is untouched."""
    victim = tmp_path / "outside"
    stems = show / "build" / "stems"
    for stem in stems.iterdir():
        (victim / stem.name).write_bytes(b"yours")
    shutil.rmtree(stems)
    stems.symlink_to(victim, target_is_directory=True)
    (show / "project.yaml").write_text(GOOD.replace("Welcome to the show.", "Welcome again."))
    assert cli("project", "render", show).exit_code == 0
    assert all(p.read_bytes() == b"yours" for p in victim.glob("*.wav")) and not stems.is_symlink()
    assert (victim / "precious.txt").read_text() == "mine"


def test_clean_removes_only_what_a_manifest_lists_inside_its_folder(show, cli, tmp_path):
    """A tampered manifest (or last_render.json) cannot make `clean` delete files elsewhere."""
    out = tmp_path / "exports"
    assert cli("project", "render", show, "--output-dir", out).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    victim = tmp_path / "outside" / "precious.txt"
    manifest["outputs"]["srt"] = "../outside/precious.txt"
    manifest["outputs"]["vtt"] = str(victim)
    manifest["outputs"]["stems"] = ["stems/../../outside/precious.txt", 7, None]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert cli("project", "clean", show).exit_code == 0
    assert victim.read_text() == "mine"
    assert not (out / "show.wav").exists() and not (out / "manifest.json").exists()


def test_say_never_writes_through_a_link_or_into_a_folder(cli, sessions, tmp_path, refused):
    victim = tmp_path / "outside.wav"
    victim.write_bytes(b"not yours to overwrite")
    link = tmp_path / "out.wav"
    link.symlink_to(victim)
    assert cli("say", "Hello.", "-o", link).exit_code == 0
    assert victim.read_bytes() == b"not yours to overwrite"
    assert not link.is_symlink() and sf.info(str(link)).samplerate == SR  # the link was replaced
    (tmp_path / "folder.wav").mkdir()
    refused("say", "Hello.", "-o", tmp_path / "folder.wav", code=2, message="is a folder")
    refused("say", "\x07\u200b", "-o", tmp_path / "x.wav", code=2, message="nothing to speak")


# --- models ---------------------------------------------------------------------------

def _broken_model(tiny_model, tmp_path, how):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    if how == "no config":
        (model / "config.json").unlink()
    elif how == "no weights":
        (model / "model.safetensors").unlink()
    elif how == "truncated weights":
        data = (model / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif how == "garbage weights":
        (model / "model.safetensors").write_bytes(os.urandom(4096))
    elif how == "no audio tokenizer weights":
        # init-random names its audio tokenizer by absolute path: point the copy at its own
        config = json.loads((model / "processor_config.json").read_text())
        config["audio_tokenizer"]["audio_tokenizer_name_or_path"] = str(model / "audio_tokenizer")
        (model / "processor_config.json").write_text(json.dumps(config))
        for file in (model / "audio_tokenizer").glob("*.safetensors"):
            file.unlink()
    return model


@pytest.mark.parametrize(("how", "message"), [
    ("no config", "missing config.json"),
    ("no weights", "missing model.safetensors"),
    ("truncated weights", "could not load the checkpoint"),
    ("garbage weights", "could not load the checkpoint"),
    ("no audio tokenizer weights", "has no model.safetensors"),
])
def test_missing_or_partial_model_files(tiny_model, tmp_path, refused, how, message):
    model = _broken_model(tiny_model, tmp_path, how)
    project = tmp_path / "show"
    project.mkdir()
    (project / "project.yaml").write_text(GOOD.replace("  guest: {audio: voices/guest.wav, transcript: Hello there.}\n",
                                                       "").replace("      - guest: Thanks for having me.\n", ""))
    refused("project", "render", project, "--model", model, code=1, message=message)
    refused("say", "Hello.", "-o", tmp_path / "hello.wav", "--model", model, code=1, message=message)


# --- issue 31: input that is not what it claims, through every door -------------------------
# Each class (text that is not text, numbers that are not numbers, names that end in a newline,
# files that are not files) is a dict of doors: a new door gets the class by adding a line.

NOT_TEXT = "hi \udcff"  # what Python makes of `higgs say $'hi \xff'`: a lone surrogate
SURROGATE = "hi \ud800"  # what the JSON or YAML escape "\ud800" becomes


def _sheet(tmp_path, line: str):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "A good row."}\n' + line + "\n", encoding="utf-8")
    return ("say", "--input-file", path, "--output-dir", tmp_path / "out")


TEXT_DOORS = {
    "say TEXT (a byte that is not UTF-8)": (lambda t: ("say", NOT_TEXT, "-o", t / "x.wav"), "not UTF-8 text"),
    "say TEXT (a lone surrogate)": (lambda t: ("say", SURROGATE, "-o", t / "x.wav"), "lone surrogate U+D800"),
    "say --scene": (lambda t: ("say", "Hello.", "--scene", NOT_TEXT, "-o", t / "x.wav"), "--scene holds the byte"),
    "a sheet's text": (lambda t: _sheet(t, '{"text": "hi \\ud800"}'), "lone surrogate U+D800"),
    "a sheet's key": (lambda t: _sheet(t, '{"text": "hi", "\\udc00": 1}'), "lone surrogate U+DC00"),
    "project import: a .jsonl with a lone surrogate": (lambda t: _import(t, '{"speaker": "Bo", "text": "\\ud800"}'),
                                                       "lone surrogate U+D800"),
    "voice add --transcript": (lambda t: ("voice", "add", "ana", t / "ref.wav", "-t", NOT_TEXT),
                               "the transcript holds the byte 0xFF"),
    "voice add --description": (lambda t: ("voice", "add", "ana", t / "ref.wav", "-t", "Hi.", "-d", SURROGATE),
                                "the description holds a lone surrogate"),
}

def _import(tmp_path, line: str):
    path = tmp_path / "lines.jsonl"
    path.write_text('{"speaker": "Ada", "text": "A good row."}\n' + line + "\n", encoding="utf-8")
    return ("project", "import", path, "-o", tmp_path / "imported")


NUMBER_DOORS = {
    "a sheet's seed: NaN": (lambda t: _sheet(t, '{"text": "hi", "seed": NaN}'), "NaN is not a number"),
    "a sheet's seed: 1e400": (lambda t: _sheet(t, '{"text": "hi", "seed": 1e400}'), "out of range"),
    "a sheet's seed: 5,000 digits": (lambda t: _sheet(t, '{"text": "hi", "seed": ' + "9" * 5000 + "}"),
                                     "5000 digits is out of range"),
    "a sheet's seed: 10^35": (lambda t: _sheet(t, '{"text": "hi", "seed": 1' + "0" * 35 + "}"), "36 digits"),
    "a sheet's seed: 10^19": (lambda t: _sheet(t, '{"text": "hi", "seed": 1' + "0" * 19 + "}"), "seed must be"),
    "a sheet's seed: 2^32": (lambda t: _sheet(t, '{"text": "hi", "seed": 4294967296}'), "seed must be"),
    "project import: a .jsonl with NaN": (lambda t: _import(t, '{"speaker": "Bo", "text": "Hi.", "x": NaN}'),
                                          "NaN is not a number"),
    "project import: a .jsonl nested deeply": (lambda t: _import(t, '{"text": "Hi.", "x": ' + "[" * 5000
                                                                 + "]" * 5000 + "}"), "nested too deeply"),
    "say --temperature nan": (lambda t: ("say", "Hello.", "--temperature", "nan", "-o", t / "x.wav"),
                              "--temperature must be"),
    "say --top-p inf": (lambda t: ("say", "Hello.", "--top-p", "inf", "-o", t / "x.wav"), "--top-p must be"),
    "say --max-seconds 1e400": (lambda t: ("say", "Hello.", "--max-seconds", "1e400", "-o", t / "x.wav"),
                                "--max-seconds must be"),
    "a sheet nested deeply": (lambda t: _sheet(t, '{"text": "hi", "x": ' + "[" * 5000 + "]" * 5000 + "}"),
                              "nested too deeply"),
}

NAME_DOORS = {
    "voice add": (lambda t: ("voice", "add", "ana\n", t / "ref.wav", "-t", "Hi."), "not a valid voice name"),
    "voice rename": (lambda t: ("voice", "rename", "bo", "ana\n"), "not a valid voice name"),
    "voice show": (lambda t: ("voice", "show", "bo\n"), "no voice named"),
    "voice remove": (lambda t: ("voice", "remove", "bo\n", "--yes"), "no voice named"),
    "say --voice": (lambda t: ("say", "Hello.", "--voice", "bo\n", "-o", t / "x.wav"), "no voice named"),
}


@pytest.fixture
def library_with_bo(cli, tmp_path):
    write_voice(tmp_path / "ref.wav")
    assert cli("voice", "add", "bo", tmp_path / "ref.wav", "-t", "Hello there.").exit_code == 0


@pytest.mark.parametrize("door", list(TEXT_DOORS) + list(NUMBER_DOORS) + list(NAME_DOORS))
def test_hostile_values_are_refused_at_each_door_before_the_model_loads(refused, sessions, tmp_path,
                                                                         library_with_bo, door):
    make, message = {**TEXT_DOORS, **NUMBER_DOORS, **NAME_DOORS}[door]
    refused(*make(tmp_path), code=2, message=message)
    assert sessions == []


FILE_DOORS = {
    "voice add --transcript-file": lambda p, t: ("voice", "add", "ana", t / "ref.wav", "--transcript-file", p),
    "serve --api-key-file": lambda p, t: ("serve", "--api-key-file", p),
}


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
@pytest.mark.parametrize("door", list(FILE_DOORS))
def test_a_device_or_a_fifo_is_refused_at_once_where_a_file_is_read(refused, sessions, tmp_path, door, special):
    """Before issue 31, /dev/zero was read until the OOM killer came, and a FIFO blocked forever."""
    import time

    write_voice(tmp_path / "ref.wav")
    path = tmp_path / "pipe" if special == "fifo" else special
    if special == "fifo":
        os.mkfifo(path)
    started = time.monotonic()
    refused(*FILE_DOORS[door](path, tmp_path), code=2, message="not a regular file")
    assert time.monotonic() - started < 10 and sessions == []


@pytest.mark.parametrize("special", ["fifo", "device"])
def test_say_never_replaces_a_fifo_or_a_device(refused, sessions, tmp_path, special):
    import stat

    target = tmp_path / "out.wav"
    if special == "fifo":
        os.mkfifo(target)
    else:
        try:  # a copy of /dev/null's node under a .wav name
            os.mknod(target, stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
        except PermissionError:
            pytest.skip("making a device node needs privileges this machine does not give")
    refused("say", "Hello.", "-o", target, code=2, message="not a regular file")
    assert sessions == [] and not target.is_file()


def test_one_damaged_voice_leaves_the_rest_of_the_library_usable(cli, tmp_path, _isolated_home):
    """A lone surrogate in one voice.json used to break `voice list` and `voice show` for every voice."""
    write_voice(tmp_path / "ref.wav")
    for name in ("ana", "bo"):
        assert cli("voice", "add", name, tmp_path / "ref.wav", "-t", "Hello there.").exit_code == 0
    meta = _isolated_home / "voices" / "bo" / "voice.json"
    meta.write_text(meta.read_text().replace('"Hello there."', '"Hello \\ud800"'))
    listed = cli("voice", "list")
    assert listed.exit_code == 0 and "ana" in listed.stdout and "Traceback" not in listed.output
    assert "skipped" in listed.stderr and "lone surrogate" in listed.stderr
    data = json.loads(cli("--json", "voice", "list").stdout)
    assert [v["name"] for v in data["voices"]] == ["ana"] and "lone surrogate" in data["skipped"][0]["reason"]
    assert cli("voice", "show", "ana").exit_code == 0
    shown = cli("voice", "show", "bo")
    assert shown.exit_code == 2 and "not a valid voice" in shown.output and "Traceback" not in shown.output


def test_serve_reads_its_key_from_a_file_or_the_environment(refused, sessions, tmp_path, monkeypatch):
    """--api-key shows in `ps`; --api-key-file and $HIGGS_API_KEY do not. Each is checked before the model loads."""
    key = tmp_path / "key"
    key.write_text("short\n")
    refused("serve", "--host", "0.0.0.0", "--api-key-file", key, code=2,
            message="shorter than 8 characters")  # the key from the file
    key.write_text("\n\n")
    refused("serve", "--api-key-file", key, code=2, message="is empty")
    key.write_text("a-long-enough-key\n")
    refused("serve", "--api-key", "another-key-here", "--api-key-file", key, code=2, message="give the key once")
    monkeypatch.setenv("HIGGS_API_KEY", "short")
    refused("serve", "--host", "0.0.0.0", code=2, message="shorter than 8 characters")  # the environment's key
    assert sessions == []


def test_serve_help_says_where_a_key_is_private(cli):
    result = cli("serve", "--help")
    assert "--api-key-file" in result.stdout and "ps" in result.stdout and "HIGGS_API_KEY" in result.stdout


@pytest.mark.slow
def test_a_byte_that_is_not_utf8_in_argv_is_a_usage_error_in_a_real_process(tmp_path):
    """`higgs say $'hi \\xff'` loaded the model, then failed with a TypeError (issue 31.5)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "higgs_cli", "say", b"hi \xff", "-o", str(tmp_path / "x.wav")],
                            capture_output=True, timeout=120, env={**os.environ, "HIGGS_MODEL": str(tmp_path / "none")})
    assert result.returncode == 2, result.stderr
    assert b"0xFF" in result.stderr and b"Traceback" not in result.stderr and not (tmp_path / "x.wav").exists()
