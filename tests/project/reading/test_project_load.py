"""Loading and validating project.yaml (higgs_cli.project.reading.load)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from higgs_cli.engine.request import Sampling
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.plugins import OutputSettings, Problem, Project, SamplingDefaults
from higgs_cli.project.commands.new import TEMPLATES, new_project
from higgs_cli.project.reading.load import find_project_file, load_project


class FakeTask:
    """A task with the given extra fields; `validate` reports what `complaint` says."""

    def __init__(self, name, fields=(), complaint=None):
        self.name = name
        self.description = f"fake {name}"
        self.fields = {f: f"the {f}" for f in fields}
        self.complaint = complaint
        self.validated: list[str] = []

    def validate(self, section, project):
        self.validated.append(section.id)
        if self.complaint:
            return [Problem(section.location, self.complaint)]
        return []

    def plan(self, section, ctx):  # pragma: no cover - not used here
        return []


@pytest.fixture
def tasks():
    """A registry of fake tasks, passed to the loader."""
    return {
        "clone": FakeTask("clone", ["speaker", "max_chunk_chars", "context_chunks"]),
        "dialogue": FakeTask("dialogue", ["context_lines"]),
        "bgm": FakeTask("bgm", ["speaker", "music"]),
        "hum": FakeTask("hum", ["speaker", "melody"]),
    }


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "project.yaml"
    file.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return file


def problems(folder: Path, text: str, *, tasks) -> list[str]:
    write(folder, text)
    with pytest.raises(ValidationError) as info:
        load_project(folder, tasks=tasks)
    error = info.value
    assert error.message == f"project.yaml has {len(error.problems)} problem" + ("s" if len(error.problems) > 1 else "")
    assert error.exit_code == 2
    return error.problems


def at(folder: Path, line: int, column: int) -> str:
    return f"{folder / 'project.yaml'}:{line}:{column}: "


FULL = """
title: Episode 1
model: bosonai/higgs-audio-v2-generation-3B-base
scene: A quiet studio with warm acoustics.
defaults: {temperature: 0.5, top_k: 50, seed: 42, max_seconds: 20, pause: 0.25}
output: {format: flac, loudness: -14, stems: false}
speakers:
  alice: {voice: alice, description: "warm female voice"}
  bob: {audio: voices/bob.wav, transcript: "Hi, I'm Bob."}
  carol: {audio: voices/carol.wav, transcript_file: voices/carol.txt}
  narrator: {description: "calm deep male voice, British accent"}
script:
  - id: intro
    task: bgm
    speaker: alice
    music: upbeat synth intro
    text: Welcome to the show!
  - task: dialogue
    scene: Two friends chatting in a cafe.
    temperature: 0.9
    lines:
      - alice: Hi Bob, how was the trip?
      - {speaker: bob, text: "Great, thanks!", seed: 7, temperature: 0.6, pause: 1.0, scene: "On a train."}
      - carol: yes
  - id: chapter
    task: clone
    speaker: narrator
    max_chunk_chars: 200
    lines:
      - |
        Long narration, first paragraph.
      - Second part.
"""


def make_voices(folder: Path) -> None:
    (folder / "voices").mkdir(parents=True, exist_ok=True)
    (folder / "voices" / "bob.wav").write_bytes(b"RIFF")
    (folder / "voices" / "carol.wav").write_bytes(b"RIFF")
    (folder / "voices" / "carol.txt").write_text("  I am Carol.\n", encoding="utf-8")


def test_valid_project_loads_into_the_model(tmp_path, tasks):
    make_voices(tmp_path)
    write(tmp_path, FULL)
    project = load_project(tmp_path, tasks=tasks)
    assert isinstance(project, Project)
    assert project.root == tmp_path and project.file == tmp_path / "project.yaml"
    assert project.title == "Episode 1"
    assert project.model == "bosonai/higgs-audio-v2-generation-3B-base"
    assert project.scene == "A quiet studio with warm acoustics."
    # given values win, the rest are the defaults
    assert project.defaults == SamplingDefaults(Sampling(temperature=0.5, top_k=50), seed=42, max_seconds=20.0,
                                                pause=0.25)
    assert project.output == OutputSettings(format="flac", loudness=-14.0, stems=False)
    assert isinstance(project.defaults.sampling.temperature, float) and isinstance(project.defaults.sampling.top_k, int)

    alice, bob, carol, narrator = (project.speakers[n] for n in ("alice", "bob", "carol", "narrator"))
    assert (alice.voice, alice.description, alice.audio) == ("alice", "warm female voice", None)
    assert bob.audio == (tmp_path / "voices" / "bob.wav").resolve() and bob.transcript == "Hi, I'm Bob."
    assert carol.transcript == "I am Carol." and carol.transcript_file == (tmp_path / "voices/carol.txt").resolve()
    assert narrator.description.startswith("calm") and narrator.voice is None and narrator.audio is None
    assert str(bob.location) == f"{tmp_path / 'project.yaml'}:8:3"

    intro, talk, chapter = project.sections
    assert [s.id for s in project.sections] == ["intro", "s2", "chapter"]  # default ids by position
    assert [s.task for s in project.sections] == ["bgm", "dialogue", "clone"]
    assert intro.speaker == "alice" and intro.fields == {"music": "upbeat synth intro"}
    assert str(intro.field_locations["music"]) == f"{tmp_path / 'project.yaml'}:15:12"
    assert len(intro.lines) == 1 and intro.lines[0].text == "Welcome to the show!"
    assert intro.lines[0].speaker == "alice"  # the section's speaker applies to its lines

    assert talk.scene == "Two friends chatting in a cafe." and talk.speaker is None
    first, second, third = talk.lines
    assert (first.speaker, first.text, first.temperature, first.seed) == ("alice", "Hi Bob, how was the trip?",
                                                                          0.9, None)
    assert (second.speaker, second.text, second.seed, second.temperature, second.pause, second.scene) == \
        ("bob", "Great, thanks!", 7, 0.6, 1.0, "On a train.")
    assert (third.speaker, third.text) == ("carol", "yes")  # written text, not YAML's boolean
    assert str(first.location) == f"{tmp_path / 'project.yaml'}:21:9"

    assert chapter.fields == {"max_chunk_chars": 200}
    assert [line.text for line in chapter.lines] == ["Long narration, first paragraph.", "Second part."]
    assert all(line.speaker == "narrator" for line in chapter.lines)
    # every task validated its section
    assert tasks["bgm"].validated == ["intro"] and tasks["clone"].validated == ["chapter"]


def test_minimal_project_gets_all_defaults(tmp_path, tasks):
    write(tmp_path / "show", """
        script:
          - task: clone
            text: Hello.
    """)
    project = load_project(tmp_path / "show" / "project.yaml", tasks=tasks)
    assert project.title == "show"  # the folder's name
    assert project.defaults == SamplingDefaults() and project.output == OutputSettings()
    assert project.speakers == {} and project.model is None and project.scene is None
    assert project.sections[0].id == "s1" and project.sections[0].lines[0].speaker is None


def test_many_problems_are_reported_at_once_in_file_order(tmp_path, tasks):
    found = problems(tmp_path, """
        title: Bad
        defaults: {temprature: 0.7, top_p: 0, seed: -1}
        output: {format: ogg, stems: maybe}
        speakers:
          alice: {voice: alice}
        script:
          - task: dialog
            text: Hi
          - task: dialogue
            lines:
              - alise: Hi
    """, tasks=tasks)
    assert found == [
        at(tmp_path, 2, 12) + "unknown key 'temprature' in defaults; did you mean 'temperature'? (expected one of "
                              "max_seconds, pause, ras_max_repeat, ras_window, retries, seed, temperature, top_k, "
                              "top_p)",
        at(tmp_path, 2, 36) + "defaults.top_p 0 is out of range (expected a number above 0 to 1)",
        at(tmp_path, 2, 45) + "defaults.seed -1 is out of range (expected a whole number from 0 to 4294967295)",
        at(tmp_path, 3, 18) + "output.format 'ogg' is not supported (expected one of wav, flac, mp3, m4b)",
        at(tmp_path, 3, 30) + "output.stems must be true or false, not 'maybe' (expected true or false)",
        at(tmp_path, 7, 11) + "unknown task 'dialog'; did you mean 'dialogue'? "
                              "(expected one of bgm, clone, dialogue, hum; see `higgs plugins list`)",
        at(tmp_path, 11, 9) + "unknown speaker 'alise'; did you mean 'alice'? "
                              "(expected a speaker declared under speakers: (one of alice))",
    ]


# Each case: the YAML, then (the text the problem points at, the start of its message).
# The position expected is that of the first occurrence of the text (None: the end of the last line).
CASES = {
    "unknown top key": ("""
        title: x
        speakrs: {}
        script: [{task: clone, text: hi}]
    """, ('speakrs', "unknown key 'speakrs' in the project file; did you mean 'speakers'?")),
    "missing script": ("""
        title: x
    """, ('title', "the project has no script (expected script: a list of sections)")),
    "empty script": ("""
        script: []
    """, ('[]', "script is empty")),
    "script not a list": ("""
        script: {task: clone}
    """, ('{task', "script must be a list of sections, not a mapping")),
    "missing task": ("""
        script:
          - text: hi
    """, ('text: hi', "section 1 has no task")),
    "missing text": ("""
        script:
          - task: clone
    """, ('task: clone', "section 1 has no text (expected text: (one line) or lines: (a list of lines))")),
    "text and lines": ("""
        script:
          - task: clone
            text: a
            lines: [b]
    """, ('lines:', "section 1 has both text: and lines:")),
    "empty text": ("""
        script:
          - task: clone
            text: "   "
    """, ('"   "', "section 1: text is empty")),
    "null text": ("""
        script:
          - task: clone
            text:
    """, (None, "section 1: text is empty")),
    "text too long": ("""
        script:
          - task: clone
            text: %s
    """ % ("x" * 5001), ('xxx', "section 1: text is 5001 characters long (expected at most 5000 characters)")),
    "task field of another task": ("""
        script:
          - task: clone
            music: jazz
            text: hi
    """, ('music', "unknown key 'music' in section 1 (task 'clone'); it is a key of task 'bgm'")),
    "bad section id": ("""
        script:
          - {id: "my intro", task: clone, text: hi}
    """, ('"my intro"', "section 1: id 'my intro' is not a valid name")),
    "duplicate id": ("""
        script:
          - {id: a, task: clone, text: hi}
          - {id: a, task: clone, text: there}
    """, ('a, task: clone, text: there', "duplicate section id 'a' (first at line 2)")),
    "explicit id clashes with a default id": ("""
        script:
          - {task: clone, text: hi}
          - {id: s1, task: clone, text: hi}
    """, ('s1', "duplicate section id 's1' (first at line 2) (sections without id: are s1, s2, ...)")),
    "duplicate key": ("""
        script:
          - task: clone
            text: a
            text: b
    """, ('text: b', "duplicate key 'text' in section 1 (first at line 3)")),
    "section override out of range": ("""
        script:
          - {task: clone, text: hi, pause: 31}
    """, ('31', "section 1: pause 31 is out of range (expected a number from 0 to 30)")),
    "line seed not whole": ("""
        script:
          - task: clone
            lines:
              - {text: hi, seed: 1.5}
    """, ('1.5', "section 1, line 1: seed must be a whole number, not the number 1.5")),
    "line unknown key": ("""
        script:
          - task: clone
            lines:
              - {text: hi, paus: 1}
    """, ('paus', "unknown key 'paus' in section 1, line 1; did you mean 'pause'?")),
    "line without text": ("""
        speakers: {a: {voice: a}}
        script:
          - task: dialogue
            lines:
              - {speaker: a}
    """, ('{speaker: a}', "section 1, line 1 has no text")),
    "line with two names": ("""
        speakers: {a: {voice: a}, b: {voice: b}}
        script:
          - task: dialogue
            lines:
              - {a: hi, b: there}
    """, ('{a: hi', "section 1, line 1 has several unknown keys ('a', 'b')")),
    "empty lines": ("""
        script:
          - task: clone
            lines: []
    """, ('[]', "section 1: lines is empty")),
    "unknown section speaker": ("""
        speakers: {narrator: {description: calm}}
        script:
          - {task: clone, speaker: narator, text: hi}
    """, ('narator', "unknown speaker 'narator'; did you mean 'narrator'?")),
    "unknown long-form speaker": ("""
        speakers: {bob: {description: calm}}
        script:
          - task: dialogue
            lines:
              - {speaker: rob, text: hi}
    """, ('rob', "unknown speaker 'rob'; did you mean 'bob'?")),
    "no voice source": ("""
        speakers:
          bob: {}
        script: [{task: clone, text: hi}]
    """, ('{}', "speaker 'bob' has no voice source (expected exactly one of: voice:")),
    "two voice sources": ("""
        speakers:
          bob: {voice: bob, audio: voices/bob.wav, transcript: hi}
        script: [{task: clone, text: hi}]
    """, ('voices/bob.wav', "speaker 'bob' has two voice sources (voice: and audio:)")),
    "audio without transcript": ("""
        speakers:
          bob: {audio: voices/bob.wav}
        script: [{task: clone, text: hi}]
    """, ('{audio', "speaker 'bob' has audio: but no transcript")),
    "transcript without audio": ("""
        speakers:
          bob: {voice: bob, transcript: hi}
        script: [{task: clone, text: hi}]
    """, ('hi}', "speaker 'bob' has transcript: without audio:")),
    "transcript and transcript_file": ("""
        speakers:
          bob: {audio: voices/bob.wav, transcript: hi, transcript_file: voices/bob.txt}
        script: [{task: clone, text: hi}]
    """, ('voices/bob.txt', "speaker 'bob' has both transcript: and transcript_file:")),
    "speaker unknown key": ("""
        speakers:
          bob: {descripton: calm}
        script: [{task: clone, text: hi}]
    """, ('descripton', "unknown key 'descripton' in speaker 'bob'; did you mean 'description'?")),
    "speaker not a mapping": ("""
        speakers:
          bob: calm voice
        script: [{task: clone, text: hi}]
    """, ('calm voice', "speaker 'bob' must be a mapping, not 'calm voice'")),
    "bad speaker name": ("""
        speakers:
          "bob smith": {description: calm}
        script: [{task: clone, text: hi}]
    """, ('"bob smith"', "speaker name 'bob smith' is not a valid name")),
    "reserved speaker name": ("""
        speakers:
          text: {description: calm}
        script: [{task: clone, text: hi}]
    """, ('text: {', "speaker name 'text' is reserved")),
    "top_k zero": ("""
        defaults: {top_k: 0}
        script: [{task: clone, text: hi}]
    """, ('0}', "defaults.top_k 0 is out of range (expected a whole number >= 1, or null)")),
    "temperature too high": ("""
        defaults:
          temperature: 2.5
        script: [{task: clone, text: hi}]
    """, ('2.5', "defaults.temperature 2.5 is out of range (expected a number from 0 to 2)")),
    "max_seconds zero": ("""
        defaults: {max_seconds: 0}
        script: [{task: clone, text: hi}]
    """, ('0}', "defaults.max_seconds 0 is out of range (expected a number above 0 to 600)")),
    "seed as text": ("""
        defaults: {seed: "42"}
        script: [{task: clone, text: hi}]
    """, ('"42"', "defaults.seed must be a whole number, not '42'")),
    "nan": ("""
        defaults: {temperature: .nan}
        script: [{task: clone, text: hi}]
    """, ('.nan', ".nan is not a finite number")),  # refused wherever it is, a task's own fields too (issue 31)
    "inf": ("""
        defaults: {temperature: -.inf}
        script: [{task: clone, text: hi}]
    """, ('-.inf', "-.inf is not a finite number")),
    "defaults not a mapping": ("""
        defaults: [1, 2]
        script: [{task: clone, text: hi}]
    """, ('[1, 2]', "defaults must be a mapping, not a list")),
    "loudness too high": ("""
        output: {loudness: 1}
        script: [{task: clone, text: hi}]
    """, ('1}', "output.loudness 1 is out of range (expected a number from -70 to 0)")),
    "peak too low": ("""
        output: {peak: -21}
        script: [{task: clone, text: hi}]
    """, ('-21', "output.peak -21 is out of range (expected a number from -20 to 0)")),
    "format typo": ("""
        output: {format: flak}
        script: [{task: clone, text: hi}]
    """, ('flak', "output.format 'flak' is not supported; did you mean 'flac'?")),
    "title not text": ("""
        title: [a]
        script: [{task: clone, text: hi}]
    """, ('[a]', "title must be text, not a list")),
    "version": ("""
        version: 2
        script: [{task: clone, text: hi}]
    """, ('2', "unsupported format version '2' (expected 1)")),
    "top level list": ("""
        - task: clone
    """, ('- task', "the project file must be a mapping, not a list")),
}


def position(text: str, needle: str | None) -> tuple[int, int]:
    """1-based line and column of `needle` in the file `write` makes of `text` (None: end of the last line)."""
    content = textwrap.dedent(text).lstrip("\n")
    offset = content.rstrip("\n").__len__() if needle is None else content.index(needle)
    head = content[:offset]
    return head.count("\n") + 1, offset - (head.rfind("\n") + 1) + 1


# Cases where another problem follows from the same mistake.
ALSO = {"speaker unknown key": "speaker 'bob' has no voice source"}


@pytest.mark.parametrize("name", list(CASES))
def test_each_problem_has_its_position(tmp_path, tasks, name):
    text, (needle, message) = CASES[name]
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "bob.wav").write_bytes(b"RIFF")
    (tmp_path / "voices" / "bob.txt").write_text("hi", encoding="utf-8")
    found = problems(tmp_path, text, tasks=tasks)
    line, column = position(text, needle)
    assert any(p.startswith(at(tmp_path, line, column) + message) for p in found), found
    if name in ALSO:
        assert len(found) == 2 and any(ALSO[name] in p for p in found), found
    else:
        assert len(found) == 1, found


def test_positions_are_exact(tmp_path, tasks):
    """The needle helper above agrees with hand-counted positions."""
    found = problems(tmp_path, "script:\n  - {task: clone, text: hi, pause: 31}\n", tasks=tasks)
    assert found == [at(tmp_path, 2, 36) + "section 1: pause 31 is out of range (expected a number from 0 to 30)"]


def test_relative_path_is_reported_as_given(tmp_path, tasks, monkeypatch):
    write(tmp_path / "show", "script: []\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError) as info:
        load_project("show", tasks=tasks)
    file = Path("show", "project.yaml")
    assert info.value.problems == [f"{file}:1:9: script is empty (expected at least one section)"]


# --- paths ---------------------------------------------------------------------------

def speaker_with_audio(path: str) -> str:
    return f"""
        speakers:
          bob: {{audio: "{path}", transcript: hi}}
        script: [{{task: clone, speaker: bob, text: hi}}]
    """


def test_path_with_dotdot_is_rejected(tmp_path, tasks):
    (tmp_path / "outside.wav").write_bytes(b"RIFF")
    found = problems(tmp_path / "p", speaker_with_audio("voices/../../outside.wav"), tasks=tasks)
    assert found == [at(tmp_path / "p", 2, 16) + "speaker 'bob': audio 'voices/../../outside.wav' leaves the project "
                     "folder ('..') (expected a path relative to the project folder, e.g. voices/bob.wav)"]


def test_absolute_path_is_rejected(tmp_path, tasks):
    target = tmp_path / "elsewhere.wav"
    target.write_bytes(b"RIFF")
    found = problems(tmp_path / "p", speaker_with_audio(str(target)), tasks=tasks)
    assert found[0].startswith(at(tmp_path / "p", 2, 16) + f"speaker 'bob': audio '{target}' is an absolute path")


@pytest.mark.parametrize("raw", ["~/bob.wav", "C:\\\\voices\\\\bob.wav"])
def test_home_and_windows_paths_are_rejected(tmp_path, tasks, raw):
    found = problems(tmp_path, speaker_with_audio(raw), tasks=tasks)
    assert "is an absolute path" in found[0]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_out_of_the_project_is_rejected(tmp_path, tasks):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF")
    project = tmp_path / "p"
    (project / "voices").mkdir(parents=True)
    (project / "voices" / "bob.wav").symlink_to(secret)
    found = problems(project, speaker_with_audio("voices/bob.wav"), tasks=tasks)
    assert found[0].startswith(at(project, 2, 16) + "speaker 'bob': audio 'voices/bob.wav' resolves to ")
    assert "outside the project folder (through a symbolic link)" in found[0]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_inside_the_project_is_fine(tmp_path, tasks):
    (tmp_path / "takes").mkdir()
    (tmp_path / "takes" / "bob-3.wav").write_bytes(b"RIFF")
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "bob.wav").symlink_to(tmp_path / "takes" / "bob-3.wav")
    write(tmp_path, speaker_with_audio("voices/bob.wav"))
    assert load_project(tmp_path, tasks=tasks).speakers["bob"].audio == (tmp_path / "takes" / "bob-3.wav").resolve()


def test_missing_file_and_folder_are_rejected(tmp_path, tasks):
    (tmp_path / "voices").mkdir()
    missing = problems(tmp_path, speaker_with_audio("voices/nope.wav"), tasks=tasks)
    assert "'voices/nope.wav' does not exist" in missing[0]
    assert "'voices' is not a file" in problems(tmp_path, speaker_with_audio("voices"), tasks=tasks)[0]


def test_transcript_file_must_be_text(tmp_path, tasks):
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "bob.wav").write_bytes(b"RIFF")
    (tmp_path / "voices" / "bob.txt").write_bytes(b"\xff\xfe\x00")
    found = problems(tmp_path, """
        speakers:
          bob: {audio: voices/bob.wav, transcript_file: voices/bob.txt}
        script: [{task: clone, speaker: bob, text: hi}]
    """, tasks=tasks)
    assert found[0].startswith(at(tmp_path, 2, 49) + "speaker 'bob': cannot read transcript_file")


# --- YAML itself ------------------------------------------------------------------------

def test_malformed_yaml_reports_yamls_position(tmp_path, tasks):
    found = problems(tmp_path, """
        title: x
        script:
          - task: clone
            text: [unclosed
    """, tasks=tasks)
    assert len(found) == 1
    assert found[0].startswith(str(tmp_path / "project.yaml") + ":5:1: malformed YAML:")
    assert found[0].endswith("(expected valid YAML)")


def test_bad_indentation_is_malformed(tmp_path, tasks):
    found = problems(tmp_path, "title: x\n  script: y\n", tasks=tasks)
    assert found[0].startswith(at(tmp_path, 2, 9) + "malformed YAML: mapping values are not allowed here")


def test_control_character_is_malformed(tmp_path, tasks):
    found = problems(tmp_path, "title: a\x07b\n", tasks=tasks)
    assert found[0].startswith(at(tmp_path, 1, 9) + "malformed YAML:")


def test_not_utf8(tmp_path, tasks):
    (tmp_path / "project.yaml").write_bytes(b"title: ok\ntitle2: \xff\n")
    with pytest.raises(ValidationError) as info:
        load_project(tmp_path, tasks=tasks)
    assert info.value.problems == [at(tmp_path, 2, 9) + "the file is not valid UTF-8 text "
                                   "(expected a UTF-8 encoded YAML file)"]


def test_empty_file(tmp_path, tasks):
    assert problems(tmp_path, "# nothing here\n", tasks=tasks) == [
        at(tmp_path, 1, 1) + "the project file is empty (expected a mapping with title:, speakers: and script:)"]


def test_python_tags_are_rejected_not_executed(tmp_path, tasks):
    marker = tmp_path / "pwned"
    found = problems(tmp_path, f"""
        title: !!python/object/apply:os.system ["touch {marker}"]
        script:
          - task: clone
            text: !!python/object/new:os.system ["touch {marker}"]
            max_chunk_chars: !!python/name:os.system
    """, tasks=tasks)
    assert not marker.exists()
    assert found == [
        at(tmp_path, 1, 8) + "unsupported YAML tag '!!python/object/apply:os.system' "
                             "(expected plain values: text, numbers, true/false, lists and mappings)",
        at(tmp_path, 4, 11) + "unsupported YAML tag '!!python/object/new:os.system' "
                              "(expected plain values: text, numbers, true/false, lists and mappings)",
        at(tmp_path, 5, 22) + "unsupported YAML tag '!!python/name:os.system' "
                              "(expected plain values: text, numbers, true/false, lists and mappings)",
    ]


def test_python_tag_on_the_whole_document(tmp_path, tasks):
    found = problems(tmp_path, '!!python/object/apply:os.system {args: ["true"]}\n', tasks=tasks)
    assert found == [at(tmp_path, 1, 1) + "unsupported YAML tag '!!python/object/apply:os.system' "
                                          "(expected plain values: text, numbers, true/false, lists and mappings)"]


def test_yaml_booleans_and_numbers_in_text_stay_as_written(tmp_path, tasks):
    write(tmp_path, """
        title: 2024-05-01
        speakers:
          "no": {description: Norwegian voice}
        script:
          - task: dialogue
            lines:
              - "no": Yes
              - {speaker: "no", text: 3.10}
              - {speaker: "no", text: off}
    """)
    project = load_project(tmp_path, tasks=tasks)
    assert project.title == "2024-05-01"
    assert [(line.speaker, line.text) for line in project.sections[0].lines] == \
        [("no", "Yes"), ("no", "3.10"), ("no", "off")]


def test_anchors_and_merge_keys(tmp_path, tasks):
    write(tmp_path, """
        speakers:
          a: {description: calm}
        script:
          - task: dialogue
            lines:
              - &calm {speaker: a, text: one, temperature: 0.3, pause: 1}
              - {<<: *calm, text: two}
              - *calm
    """)
    lines = load_project(tmp_path, tasks=tasks).sections[0].lines
    assert [(line.text, line.temperature, line.pause) for line in lines] == \
        [("one", 0.3, 1.0), ("two", 0.3, 1.0), ("one", 0.3, 1.0)]


def test_merges_of_merges_within_limits_load(tmp_path, tasks):
    write(tmp_path, """
        speakers:
          a: {description: calm}
        script:
          - task: dialogue
            lines:
              - &base {speaker: a, text: one, temperature: 0.3}
              - &slow {<<: *base, text: two, pause: 1}
              - {<<: [*slow, *base], text: three}
    """)
    lines = load_project(tmp_path, tasks=tasks).sections[0].lines
    assert [(line.text, line.temperature, line.pause) for line in lines] == \
        [("one", 0.3, None), ("two", 0.3, 1.0), ("three", 0.3, 1.0)]


def test_a_mapping_that_merges_itself_is_reported_where_it_is_anchored(tmp_path, tasks):
    found = problems(tmp_path, """
        defaults: &d
          temperature: 0.5
          <<: *d
        script: [{task: clone, text: hi}]
    """, tasks=tasks)
    assert found == [at(tmp_path, 1, 11) + "a mapping contains itself through an alias (a *name inside the &name it "
                                          "refers to, or a merge (<<) of itself) (expected aliases to values "
                                          "defined outside them)"]


def test_a_task_field_that_contains_itself_is_refused(tmp_path, tasks):
    found = problems(tmp_path, "script:\n  - task: bgm\n    text: hi\n    music: &m {a: [*m]}\n", tasks=tasks)
    assert found == [at(tmp_path, 4, 12) + "a mapping contains itself through an alias (a *name inside the &name it "
                                           "refers to, or a merge (<<) of itself) (expected aliases to values "
                                           "defined outside them)"]
    assert tasks["bgm"].validated == []  # never handed to the task


@pytest.mark.parametrize("line", ["- alice: [laugh] hello", "- [laugh] hello", "- {speaker: alice, text: [laugh] hi}"])
def test_text_that_starts_with_a_bracket_gets_a_quoting_hint(tmp_path, tasks, line):
    found = problems(tmp_path, f"""
        speakers:
          alice: {{description: calm}}
        script:
          - task: dialogue
            lines:
              - alice: fine
              {line}
    """, tasks=tasks)
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'project.yaml'}:7:"), found
    assert "malformed YAML" in found[0] and 'in quotes, e.g. - host: "[laugh] hello"' in found[0], found


@pytest.mark.parametrize(("line", "message"), [
    ("- alice: [laugh]", 'section 1, line 2: text must be text, not a list (expected text; put text that starts '
                         'with "[" in quotes'),
    ("- [laugh]", 'section 1, line 2 is a list, not a line (expected a line; put text that starts with "[" in '
                  'quotes'),
])
def test_a_marker_alone_read_as_a_list_gets_a_quoting_hint(tmp_path, tasks, line, message):
    text = f"""
        speakers:
          alice: {{description: calm}}
        script:
          - task: dialogue
            lines:
              - alice: fine
              {line}
    """
    found = problems(tmp_path, text, tasks=tasks)
    assert len(found) == 1 and found[0].startswith(at(tmp_path, *position(text, "[laugh]")) + message), found


def test_ras_settings_on_sections_and_lines(tmp_path, tasks):
    write(tmp_path, """
        defaults: {ras_window: 5, ras_max_repeat: 3}
        speakers:
          a: {description: calm}
        script:
          - task: dialogue
            ras_window: 0
            lines:
              - a: one
              - {speaker: a, text: two, ras_window: 9, ras_max_repeat: 1}
              - a: three
                ras_max_repeat: 4
    """)
    project = load_project(tmp_path, tasks=tasks)
    assert (project.defaults.sampling.ras_window, project.defaults.sampling.ras_max_repeat) == (5, 3)
    assert [(line.ras_window, line.ras_max_repeat) for line in project.sections[0].lines] == \
        [(0, None), (9, 1), (0, 4)]
    text = """
        script:
          - task: clone
            ras_window: -1
            lines:
              - {text: hi, ras_max_repeat: 0}
              - {text: hi, ras_window: 1.5}
    """
    assert problems(tmp_path, text, tasks=tasks) == [
        at(tmp_path, *position(text, "-1")) + "section 1: ras_window -1 is out of range "
                                              "(expected a whole number from 0 to 100)",
        at(tmp_path, *position(text, "0}")) + "section 1, line 1: ras_max_repeat 0 is out of range "
                                              "(expected a whole number from 1 to 100)",
        at(tmp_path, *position(text, "1.5")) + "section 1, line 2: ras_window must be a whole number, not the "
                                               "number 1.5 (expected a whole number from 0 to 100)",
    ]


def test_task_field_values_are_plain_python(tmp_path, tasks):
    write(tmp_path, """
        script:
          - task: bgm
            music: {style: jazz, bpm: 90, instruments: [piano, bass]}
            text: hi
    """)
    section = load_project(tmp_path, tasks=tasks).sections[0]
    assert section.fields == {"music": {"style": "jazz", "bpm": 90, "instruments": ["piano", "bass"]}}


def test_alias_bomb_in_a_task_field_is_refused(tmp_path, tasks):
    layers = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    layers += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]  # 9**10 values
    found = problems(tmp_path, "script:\n  - task: bgm\n    text: hi\n    music:\n"
                               + "".join(f"      {layer}\n" for layer in layers), tasks=tasks)
    assert found == [at(tmp_path, 5, 7) + "section 1: music is too large once its aliases are expanded "
                                          "(expected at most 10000 values)"]


# --- tasks ----------------------------------------------------------------------------

def test_task_validate_problems_are_reported(tmp_path, tasks):
    tasks["bgm"].complaint = "task 'bgm' needs `music:`"
    found = problems(tmp_path, """
        script:
          - task: bgm
            text: hi
          - task: clone
            text: hi
    """, tasks=tasks)
    assert found == [at(tmp_path, 2, 5) + "task 'bgm' needs `music:`"]


def test_task_problems_are_sorted_in_by_location_and_never_parsed(tmp_path, tasks):
    """A task's Problems keep the location it gave; a plain string (the older API) is kept as written,
    after the positioned problems, without the loader reading a position out of it."""
    tasks["bgm"].validate = lambda section, project: ["p.yaml:1:1: old-style text", Problem(None, "no place")]
    tasks["clone"].complaint = "clone's own"
    found = problems(tmp_path, """
        script:
          - task: bgm
            text: hi
          - task: clone
            text: hi
          - {task: clone, text: hi, pause: 99}
    """, tasks=tasks)
    assert found == [at(tmp_path, 4, 5) + "clone's own",
                     at(tmp_path, 6, 36) + "section 3: pause 99 is out of range (expected a number from 0 to 30)",
                     "p.yaml:1:1: old-style text", "no place"]


def test_task_validate_is_skipped_for_broken_sections(tmp_path, tasks):
    found = problems(tmp_path, """
        speakers:
          a: {}
        script:
          - {id: ok, task: clone, text: hi}
          - {id: broken, task: clone, text: ""}
          - {id: uses-broken-speaker, task: clone, speaker: a, text: hi}
    """, tasks=tasks)
    assert len(found) == 2
    assert tasks["clone"].validated == ["ok"]


def test_unknown_task_lists_the_registered_ones(tmp_path, tasks):
    found = problems(tmp_path, "script: [{task: narrate, text: hi}]\n", tasks=tasks)
    assert found == [at(tmp_path, 1, 17) + "unknown task 'narrate' "
                                           "(expected one of bgm, clone, dialogue, hum; see `higgs plugins list`)"]


# --- finding and creating projects -------------------------------------------------

def test_find_project_file(tmp_path):
    file = write(tmp_path, "script: []\n")
    assert find_project_file(tmp_path) == file
    assert find_project_file(file) == file
    other = tmp_path / "other.yaml"
    other.write_text("x: 1\n")
    assert find_project_file(other) == other
    (tmp_path / "voices").mkdir()
    with pytest.raises(UsageError, match="no project.yaml in"):
        find_project_file(tmp_path / "voices")
    with pytest.raises(UsageError, match="does not exist"):
        find_project_file(tmp_path / "missing")


@pytest.mark.parametrize("template", TEMPLATES)
def test_new_project_from_each_template_loads(tmp_path, tasks, template):
    folder = new_project(tmp_path / "new", title='Ep. 1: "Hello" — 你好', template=template)
    assert folder == tmp_path / "new" and (folder / "voices").is_dir()
    text = (folder / "project.yaml").read_text(encoding="utf-8")
    assert text.count("#") > 10  # templates explain their keys
    project = load_project(folder, tasks=tasks)
    assert project.title == 'Ep. 1: "Hello" — 你好'
    assert project.sections and all(s.lines for s in project.sections)
    # description-only speakers: renders without any reference audio
    assert all(s.description and not s.voice and not s.audio for s in project.speakers.values())


@pytest.mark.parametrize("template", TEMPLATES)
def test_new_project_validates_with_the_installed_tasks(tmp_path, template):
    from higgs_cli.plugins.manager import get_tasks

    if not {"clone", "dialogue", "bgm"} <= set(get_tasks()):
        pytest.skip("built-in task plugins are not installed")
    load_project(new_project(tmp_path / "new", title="Real", template=template))


def test_new_project_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="is not empty"):
        new_project(tmp_path / "busy", title="x")
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a folder"):
        new_project(tmp_path / "file", title="x")


def test_new_project_accepts_an_empty_folder(tmp_path, tasks):
    (tmp_path / "empty").mkdir()
    assert (new_project(tmp_path / "empty", title="x", template="audiobook") / "project.yaml").is_file()


def test_new_project_rejects_bad_template_and_title(tmp_path):
    with pytest.raises(UsageError, match="unknown template 'podcat'; did you mean 'podcast'"):
        new_project(tmp_path / "a", title="x", template="podcat")
    with pytest.raises(UsageError, match="title"):
        new_project(tmp_path / "b", title="two\nlines")
    with pytest.raises(UsageError, match="title"):
        new_project(tmp_path / "c", title="   ")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
