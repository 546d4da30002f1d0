"""What each built-in task asks the model for: tags, scenes, markers, history, chunking."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeSession, make_project, section, write_voice

from higgs_cli.errors import HiggsError
from higgs_cli.plugins import Location, PlannedLine, Speaker
from higgs_cli.plugins.manager import get_tasks
from higgs_cli.project.planning.plan import ProjectPlanContext, global_context, is_placeholder, plan_project

LONG = " ".join(f"Sentence number {i} tells a little more of the story." for i in range(12))


def test_clone_chunks_long_text_and_each_chunk_hears_the_previous_ones(tmp_path):
    project = make_project(tmp_path, [section("intro", "clone", ("alice", LONG), max_chunk_chars=120)])
    session = FakeSession()
    planned = plan_project(project, session)
    assert len(planned) > 3
    assert all(len(p.request.text) <= 121 for p in planned)
    assert [p.context_from for p in planned[:4]] == [(), (0,), (0, 1), (1, 2)]
    assert all(p.speaker == "alice" and p.request.text.endswith(".") for p in planned)
    # the voice reference is the history of every chunk, encoded once
    turn, = planned[0].request.history
    assert turn.text == "Hello, I am Alice."
    assert all(p.request.history[0].codes is turn.codes for p in planned)
    assert session.encode_calls == 1
    assert " ".join(p.display_text for p in planned) == LONG


def test_clone_context_chunks_field(tmp_path):
    project = make_project(tmp_path, [section("a", "clone", ("alice", LONG), max_chunk_chars=100,
                                              context_chunks=1)])
    planned = plan_project(project, FakeSession())
    assert [p.context_from for p in planned[:3]] == [(), (0,), (1,)]


def test_project_voice_codes_are_cached_on_disk(tmp_path):
    project = make_project(tmp_path, [section("a", "clone", ("alice", "Hi there."))])
    first = FakeSession()
    plan_project(project, first)
    second = FakeSession()
    planned = plan_project(project, second)
    assert (first.encode_calls, second.encode_calls) == (1, 0)
    assert list((tmp_path / ".higgs" / "codes").glob("*.npy"))
    # without any model, the cached codes still resolve
    ctx = ProjectPlanContext(project, codec_id=first.codec_id, encode=None)
    assert np.array_equal(ctx.voice_turns("alice")[0].codes, planned[0].request.history[0].codes)
    assert not ctx.unresolved
    other = ProjectPlanContext(project, codec_id="another-codec", encode=None)
    other.voice_turns("alice")
    assert other.unresolved == {"alice"}


def _write_npy(array):
    def damage(path):
        with open(path, "wb") as handle:
            np.save(handle, array)
    return damage


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(b"not an npy file"),
    lambda path: path.write_bytes(path.read_bytes()[:40]),  # cut short
    _write_npy(np.full((8, 3), -5)),  # negative: not codes
    _write_npy(np.zeros((8, 3), dtype=np.float32)),  # floats: not codes
    _write_npy(np.arange(4)),  # one dimension: not codes
], ids=["garbage", "truncated", "negative", "float", "1-d"])
def test_damaged_project_voice_codes_are_encoded_again(tmp_path, damage):
    """Project recordings' codes are checked like a library voice's (issue 15.3): damaged codes are
    neither used by status nor sent to the model; a render encodes again and replaces the file."""
    project = make_project(tmp_path, [section("a", "clone", ("alice", "Hi there."))])
    first = FakeSession()
    good = plan_project(project, first)[0].request.history[0].codes
    cache, = (tmp_path / ".higgs" / "codes").glob("*.npy")
    damage(cache)
    status = ProjectPlanContext(project, codec_id=first.codec_id, encode=None)
    turn, = status.voice_turns("alice")
    assert status.unresolved == {"alice"} and is_placeholder(turn)
    again = FakeSession()
    codes = plan_project(project, again)[0].request.history[0].codes
    assert again.encode_calls == 1 and np.array_equal(codes, good) and not is_placeholder(codes)
    assert np.array_equal(np.load(cache), good)  # replaced in place
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]  # no temporary left


def test_clone_description_only_speaker_goes_into_the_scene(tmp_path):
    project = make_project(tmp_path, [section("a", "clone", ("bob", "Good evening."))], scene="A quiet study.")
    p, = plan_project(project, FakeSession())
    assert p.request.history == ()
    assert p.request.scene == "A quiet study.\n\nSPEAKER0: deep male voice, slow"
    assert p.request.text == "Good evening."


def test_dialogue_tags_speakers_by_first_appearance_in_the_project(tmp_path):
    project = make_project(tmp_path, [
        section("opening", "clone", ("bob", "Welcome.")),
        section("talk", "dialogue", ("alice", "Hi Bob [laugh]"), ("bob", "Hi Alice."), ("alice", "Shall we?"),
                scene="Two friends in a cafe."),
    ])
    planned = plan_project(project, FakeSession())[1:]
    assert [p.request.text for p in planned] == [
        "[SPEAKER1] Hi Bob <SE>[Laughter]</SE>", "[SPEAKER0] Hi Alice.", "[SPEAKER1] Shall we?"]
    alice_turn, = planned[0].request.history
    assert alice_turn.text == "[SPEAKER1] Hello, I am Alice."
    assert planned[1].request.history == ()  # bob has only a description
    assert planned[0].request.scene == "Two friends in a cafe.\n\nSPEAKER0: deep male voice, slow"
    assert all(p.context_from == () for p in planned)
    assert planned[0].extra == {"tag": "SPEAKER1"}


def test_dialogue_context_lines(tmp_path):
    project = make_project(tmp_path, [section("t", "dialogue", ("alice", "One."), ("bob", "Two."),
                                              ("alice", "Three."), context_lines=1)])
    assert [p.context_from for p in plan_project(project, FakeSession())] == [(), (0,), (1,)]


def test_bgm_wraps_the_text_in_music_markers_and_describes_the_music(tmp_path):
    project = make_project(tmp_path, [section("b", "bgm", ("alice", "The night was calm"), music="soft piano")])
    p, = plan_project(project, FakeSession())
    assert p.request.text == "<SE_s>[Music]</SE_s> The night was calm <SE_e>[Music]</SE_e>"
    assert p.request.scene == "Audio is recorded with background music: soft piano"
    assert p.display_text == "The night was calm"
    assert p.request.history[0].text == "Hello, I am Alice."


def test_hum_wraps_the_text_in_humming_markers(tmp_path):
    project = make_project(tmp_path, [section("h", "hum", ("alice", "mm hmm la la"),
                                              melody="a slow lullaby in C major")])
    p, = plan_project(project, FakeSession())
    assert p.request.text == "<SE>[Humming]</SE> mm hmm la la <SE_e>[Humming]</SE_e>"
    assert p.request.scene == "The speaker hums a melody: a slow lullaby in C major"
    assert len(p.request.history) == 1


@pytest.mark.parametrize("task, field, text, expected", [
    ("bgm", "music", "[music start] Welcome to the show! [music end]",
     "<SE_s>[Music]</SE_s> Welcome to the show! <SE_e>[Music]</SE_e>"),
    ("bgm", "music", "[Music  Start] Welcome!", "<SE_s>[Music]</SE_s> Welcome! <SE_e>[Music]</SE_e>"),
    ("bgm", "music", "Welcome! [music end]", "<SE_s>[Music]</SE_s> Welcome! <SE_e>[Music]</SE_e>"),
    ("bgm", "music", "<SE_s>[Music]</SE_s> Hi <SE_e>[Music]</SE_e>", "<SE_s>[Music]</SE_s> Hi <SE_e>[Music]</SE_e>"),
    ("bgm", "music", "[laugh] Hi", "<SE_s>[Music]</SE_s> <SE>[Laughter]</SE> Hi <SE_e>[Music]</SE_e>"),
    ("hum", "melody", "[humming start] mm hmm [humming end]", "<SE>[Humming]</SE> mm hmm <SE_e>[Humming]</SE_e>"),
    ("hum", "melody", "[Humming Start] la la", "<SE>[Humming]</SE> la la <SE_e>[Humming]</SE_e>"),
])
def test_wrapping_tasks_do_not_double_markers_the_text_has(tmp_path, task, field, text, expected):
    """Issue 16.4: a marker the line already has is not added again (compared after normalization)."""
    project = make_project(tmp_path, [section("s", task, ("alice", text), **{field: "a tune"})])
    p, = plan_project(project, FakeSession())
    assert p.request.text == expected


@pytest.mark.parametrize("task", ["clone", "dialogue"])
def test_tasks_that_add_no_markers_keep_the_texts_markers_once(tmp_path, task):
    project = make_project(tmp_path, [section("s", task, ("alice", "[music start] Welcome! [music end]"))])
    p, = plan_project(project, FakeSession())
    assert p.request.text.count("<SE_s>[Music]</SE_s>") == 1 and p.request.text.count("<SE_e>[Music]</SE_e>") == 1


def test_line_settings_override_project_defaults(tmp_path):
    project = make_project(tmp_path, [section("a", "dialogue", ("alice", "Hi."), ("bob", "Yo."))])
    lines = project.sections[0].lines
    from dataclasses import replace

    tweaked = replace(project.sections[0], lines=(replace(lines[0], seed=7, temperature=0.3, pause=1.5,
                                                          scene="On a train."), lines[1]))
    project = replace(project, sections=(tweaked,))
    first, second = plan_project(project, FakeSession())
    assert (first.request.seed, first.request.sampling.temperature, first.pause_after) == (7, 0.3, 1.5)
    assert first.request.scene.startswith("On a train.")
    assert (second.request.seed, second.request.sampling.temperature, second.pause_after) == (0, 0.7, 0.4)
    assert first.request.max_frames == 750


def _where(task, **fields):
    loc = Location("p.yaml", 3, 5)
    sec = section("s", task, ("bob", "Hello."), **fields)
    from dataclasses import replace

    return replace(sec, location=loc, field_locations={k: Location("p.yaml", 4, 7) for k in fields})


def test_validation_problems_name_file_line_column(tmp_path):
    from dataclasses import replace

    project = make_project(tmp_path, [])
    tasks = get_tasks()

    def validate(name, section):
        return [str(problem) for problem in tasks[name].validate(section, project)]

    assert validate("bgm", _where("bgm")) == ["p.yaml:3:5: task 'bgm' needs `music:`"]
    assert validate("bgm", _where("bgm", music="  ")) == ["p.yaml:4:7: `music` must be non-empty text"]
    hum = validate("hum", _where("hum", melody="lullaby"))
    assert len(hum) == 1 and "p.yaml:3:5: task 'hum' clones a voice" in hum[0] and "'bob'" in hum[0]
    assert validate("clone", _where("clone", max_chunk_chars=0)) == [
        "p.yaml:4:7: `max_chunk_chars` must be a whole number from 20 to 5000, not 0"]
    carol = replace(section("s", "clone", (None, "Hi."), speaker="carol"), location=Location("p.yaml", 3, 5))
    assert validate("clone", carol) == ["p.yaml:3:5: unknown speaker 'carol' (known: alice, bob)"]
    assert validate("dialogue", _where("dialogue")) == []
    assert validate("hum", section("h", "hum", ("alice", "la"), melody="x")) == []


def test_a_line_without_speaker_needs_one_when_the_project_has_several(tmp_path):
    project = make_project(tmp_path, [])
    problems = [str(p) for p in get_tasks()["clone"].validate(section("s", "clone", (None, "Hi.")), project)]
    assert problems == ["section 's': this line has no speaker; set `speaker:` on the line or on the section"]
    assert get_tasks()["clone"].validate(section("s", "clone", (None, "Hi."), speaker="bob"), project) == []
    solo = make_project(tmp_path / "solo", [section("s", "clone", (None, "Hi."))],
                        speakers={"n": Speaker("n", audio=write_voice(tmp_path / "n.wav"), transcript="Hm.")})
    assert plan_project(solo, FakeSession())[0].speaker == "n"


def test_global_context_maps_section_indexes(tmp_path):
    project = make_project(tmp_path, [section("a", "clone", ("alice", LONG), max_chunk_chars=200),
                                      section("b", "clone", ("bob", LONG), max_chunk_chars=200)])
    planned = plan_project(project, FakeSession())
    start = next(i for i, p in enumerate(planned) if p.section == "b")
    assert global_context(planned)[start + 1] == (start,)


def test_a_plugin_that_plans_bad_context_is_reported(tmp_path):
    class Bad:
        name, description, fields = "bad", "bad", {}

        def validate(self, section, project):
            return []

        def plan(self, section, ctx):
            return [PlannedLine(section.id, None, "x", get_tasks()["clone"].plan(section, ctx)[0].request, 0.1,
                                context_from=(0,))]

    project = make_project(tmp_path, [section("s", "bad", ("alice", "Hi."))])
    with pytest.raises(HiggsError, match="context must name earlier lines"):
        plan_project(project, FakeSession(), tasks={**get_tasks(), "bad": Bad()})


def test_ras_settings_flow_from_defaults_sections_and_lines_into_sampling(tmp_path):
    """ras_window / ras_max_repeat reach each request's Sampling as temperature does: line, else section,
    else the project's defaults."""
    from higgs_cli.project.reading.load import load_project

    (tmp_path / "project.yaml").write_text("""\
defaults: {temperature: 0.5, ras_window: 5, ras_max_repeat: 3}
speakers:
  a: {description: calm}
script:
  - task: dialogue
    ras_window: 0
    temperature: 0.2
    lines:
      - a: one
      - {speaker: a, text: two, ras_window: 9, ras_max_repeat: 1}
  - task: clone
    speaker: a
    text: three
""")
    tasks = get_tasks()
    planned = plan_project(load_project(tmp_path, tasks=tasks), FakeSession(), tasks=tasks)
    assert [(p.request.sampling.temperature, p.request.sampling.ras_window, p.request.sampling.ras_max_repeat)
            for p in planned] == [(0.2, 0, 3), (0.2, 9, 1), (0.5, 5, 3)]
