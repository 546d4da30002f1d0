"""Rendering with a FakeSession: outputs, timings, the cache, resuming, status, clean."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeInterrupt, FakeSession, make_project, section, write_voice

from higgs_cli.audio.master import assemble, trim_silence
from higgs_cli.errors import LockedError
from higgs_cli.fsutil import exclusive_lock
from higgs_cli.plugins.script import Speaker
from higgs_cli.project import clean_project, project_status, render_project
from higgs_cli.project.folder.store import Store

SENTENCES = [f"This is sentence {w} of the story." for w in ("one", "two", "three", "four", "five")]


def podcast(root, **output):
    return make_project(root, [
        section("intro", "clone", ("alice", "Welcome to the show.")),
        section("talk", "dialogue", ("alice", "How are you, Bob?"), ("bob", "Fine [laugh] thanks."),
                ("alice", "Great.")),
    ], **output)


def with_line(project, section_no, line_no, text):
    sec = project.sections[section_no]
    lines = list(sec.lines)
    lines[line_no] = replace(lines[line_no], text=text)
    sections = list(project.sections)
    sections[section_no] = replace(sec, lines=tuple(lines))
    return replace(project, sections=tuple(sections))


def _srt_times(text):
    stamp = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"
    def ms(h, m, s, frac):
        return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(frac)

    return [(ms(*m[:4]), ms(*m[4:])) for m in re.findall(stamp + " --> " + stamp, text)]


def test_render_writes_master_stems_subtitles_and_manifest(tmp_path):
    project = podcast(tmp_path)
    session = FakeSession()
    summary = render_project(project, session)
    build = tmp_path / "build"
    assert summary.outputs["master"] == build / "test-show.wav"
    assert (summary.lines, summary.generated, summary.cached) == (4, 4, 0)
    assert session.generate_calls == 1  # four independent lines fit one batch
    stems = sorted(p.name for p in (build / "stems").iterdir())
    assert stems == ["intro_001_alice.wav", "talk_001_alice.wav", "talk_002_bob.wav", "talk_003_alice.wav"]
    audio, rate = sf.read(build / "test-show.wav")
    assert rate == 24000 and abs(len(audio) / rate - summary.duration) < 1e-6
    assert np.abs(audio).max() <= 10 ** (-1 / 20) + 1e-4

    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["title"] == "Test Show" and manifest["model_id"] == session.model_id
    assert manifest["codec_id"] == session.codec_id and manifest["is_random"] is False
    assert manifest["sample_rate"] == 24000
    assert manifest["outputs"] == {"master": "test-show.wav", "srt": "test-show.srt", "vtt": "test-show.vtt",
                                   "review": "review.html",
                                   "stems": [f"stems/{s}" for s in stems]}
    lines = manifest["lines"]
    assert [(m["section"], m["index"], m["speaker"]) for m in lines] == [
        ("intro", 0, "alice"), ("talk", 0, "alice"), ("talk", 1, "bob"), ("talk", 2, "alice")]
    assert lines[2]["text"] == "Fine [laugh] thanks." and "<SE>[Laughter]</SE>" in lines[2]["prompt_text"]
    assert all(m["source"] == "generated" and m["seed"] == 0 and m["sampling"]["temperature"] == 0.7
               for m in lines)

    # timings: what assembly of the cached clips gives, in the manifest and both subtitle files
    store = Store(tmp_path)
    clips = [trim_silence(store.get(m["key"]).audio) for m in lines]
    _, spans = assemble(clips, [0.4] * 3, crossfade_ms=10.0)
    assert [(m["start"], m["end"]) for m in lines] == spans
    expected = [(round(a * 1000), round(b * 1000)) for a, b in spans]
    srt = (build / "test-show.srt").read_text()
    vtt = (build / "test-show.vtt").read_text()
    assert _srt_times(srt) == _srt_times(vtt) == expected
    assert "bob: Fine thanks." in srt and "[laugh]" not in srt and vtt.startswith("WEBVTT")  # markers not shown


def test_second_render_is_all_cache_hits(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    first = (tmp_path / "build" / "test-show.wav").read_bytes()
    again = FakeSession()
    summary = render_project(project, again)
    assert again.generate_calls == 0 and (summary.generated, summary.cached) == (0, 4)
    assert (tmp_path / "build" / "test-show.wav").read_bytes() == first
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert {m["source"] for m in manifest["lines"]} == {"cache"}


def test_editing_one_line_regenerates_exactly_that_line(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    session = FakeSession()
    summary = render_project(with_line(project, 1, 1, "Never better."), session)
    assert [r.text for r in session.requests] == ["[SPEAKER1] Never better."]
    assert (summary.generated, summary.cached) == (1, 3)


def test_editing_chunk_two_of_a_clone_section_regenerates_only_it_until_context_is_refreshed(tmp_path):
    project = make_project(tmp_path, [section("story", "clone", ("alice", " ".join(SENTENCES)),
                                              max_chunk_chars=40)])
    first = FakeSession()
    render_project(project, first)
    assert len(first.requests) == 5
    assert first.generate_calls == 5  # each chunk waits for the one before it
    # chunk i hears chunks i-2 and i-1: their text and generated codes follow the voice reference
    fourth = first.requests[3]
    assert [t.text for t in fourth.history] == ["Hello, I am Alice.", first.requests[1].text, first.requests[2].text]
    cache = Store(tmp_path)
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert np.array_equal(fourth.history[2].codes, cache.get(manifest["lines"][2]["key"]).codes)

    edited = " ".join([SENTENCES[0], "This is the NEW second sentence.", *SENTENCES[2:]])
    second = FakeSession()
    edited_project = with_line(project, 0, 0, edited)
    render_project(edited_project, second)
    assert [r.text for r in second.requests] == ["This is the NEW second sentence."]  # edit locality
    # chunks 3 and 4 heard the old chunk 2: status says so, and --refresh-context redoes them and
    # every chunk that hears a redone one (a fixed point)
    assert [s.context_changed for s in project_status(edited_project)] == [False, False, True, True, False]
    third = FakeSession()
    summary = render_project(edited_project, third, refresh_context=True)
    assert [r.text for r in third.requests] == SENTENCES[2:]
    assert summary.generated == 3 and summary.context_changed == []
    assert not any(s.context_changed for s in project_status(edited_project))
    # the same audio as a render of the edited text from an empty cache
    fresh = tmp_path / "fresh"
    render_project(replace(edited_project, root=fresh, file=fresh / "project.yaml"), FakeSession())
    ours = json.loads((tmp_path / "build" / "manifest.json").read_text())["lines"]
    theirs = json.loads((fresh / "build" / "manifest.json").read_text())["lines"]
    assert all(np.array_equal(Store(tmp_path).get(a["key"]).codes, Store(fresh).get(b["key"]).codes)
               for a, b in zip(ours, theirs, strict=True))


def test_interrupted_render_keeps_finished_lines_and_resumes(tmp_path):
    project = make_project(tmp_path, [section("story", "clone", ("alice", " ".join(SENTENCES)),
                                              max_chunk_chars=40)])
    with pytest.raises(FakeInterrupt):
        render_project(project, FakeSession(fail_after=3))
    cache_dir = tmp_path / ".higgs" / "cache"
    assert len(list(cache_dir.glob("*.npz"))) == 3
    assert [p.name for p in cache_dir.iterdir() if not p.name.endswith(".npz")] == []  # no partial entry
    assert not (tmp_path / "build").exists()
    assert not list(tmp_path.rglob("*.wav.*")) and not list(tmp_path.rglob(".*.npz"))
    assert [s.state for s in project_status(project)] == ["stale"] * 3 + ["missing"] * 2

    resumed = FakeSession()
    summary = render_project(project, resumed)
    assert [r.text for r in resumed.requests] == SENTENCES[3:]
    assert (summary.generated, summary.cached) == (2, 3)
    assert (tmp_path / "build" / "test-show.wav").is_file()


def test_an_interrupted_call_loses_only_its_own_lines(tmp_path):
    project = make_project(tmp_path, [section("talk", "dialogue", *[("alice" if i % 2 else "bob", f"Line {i}.")
                                                                    for i in range(12)])])
    with pytest.raises(FakeInterrupt):  # calls of 2 x 4 requests: the first is cached, the second is lost
        render_project(project, FakeSession(fail_after=9), batch_size=2)
    assert len(list((tmp_path / ".higgs" / "cache").glob("*.npz"))) == 8
    resumed = FakeSession()
    render_project(project, resumed, batch_size=2)
    assert [r.text for r in resumed.requests] == [f"[SPEAKER{i % 2}] Line {i}." for i in range(8, 12)]


def test_a_corrupt_cache_entry_is_a_miss_and_is_replaced(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    entry = sorted((tmp_path / ".higgs" / "cache").glob("*.npz"))[0]
    entry.write_bytes(b"not a zip file")
    session = FakeSession()
    render_project(project, session)
    assert len(session.requests) == 1
    assert Store(tmp_path).get(entry.stem) is not None


def test_identical_lines_are_generated_once(tmp_path):
    project = make_project(tmp_path, [section("t", "dialogue", ("alice", "Yes."), ("bob", "No."), ("alice", "Yes."))])
    session = FakeSession()
    summary = render_project(project, session)
    assert len(session.requests) == 2 and summary.generated == 2
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["lines"][0]["key"] == manifest["lines"][2]["key"]
    assert render_project(project, FakeSession()).cached == 3


def test_batches_respect_batch_size_and_context(tmp_path):
    project = make_project(tmp_path, [
        section("a", "clone", ("alice", " ".join(SENTENCES)), max_chunk_chars=40),
        section("b", "dialogue", *[("bob", f"Reply {i}.") for i in range(5)]),
    ])
    session = FakeSession()
    render_project(project, session, batch_size=2)
    assert set(session.batch_sizes) == {2} and len(session.calls[0]) == 6  # 2 slots x 4 batches per call
    order = [r.text for r in session.requests]
    assert [order.index(s) for s in SENTENCES] == sorted(order.index(s) for s in SENTENCES)
    for call in session.calls:  # two chunks of one chain never share a call
        assert sum(t in SENTENCES for t in call) <= 1


def test_random_model_output_is_flagged(tmp_path):
    project = podcast(tmp_path)
    summary = render_project(project, FakeSession(is_random=True))
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["is_random"] is True and "noise" in manifest["note"]
    assert summary.is_random and "noise" in summary.to_dict()["warning"]


def test_output_settings_and_custom_output_dir(tmp_path):
    project = podcast(tmp_path / "p", format="flac", stems=False, subtitles=False, trim_silence=False)
    out = tmp_path / "elsewhere"
    summary = render_project(project, FakeSession(), out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "review.html", "test-show.flac"]
    assert set(summary.outputs) == {"master", "manifest", "review"}
    assert project_status(project).outputs_current
    removed = clean_project(project, cache=False)
    assert not (out / "test-show.flac").exists() and out.is_dir()
    assert any(r.endswith("test-show.flac") for r in removed)


def test_progress_reports(tmp_path):
    events = []

    class Recorder:
        def start(self, sections):
            events.append(("start", sections))

        def frames(self, n):
            events.append(("frames", n))

        def line_done(self, section, seconds):
            events.append(("line", section))

        def stage(self, message):
            events.append(("stage", message))

    project = podcast(tmp_path)
    render_project(project, FakeSession(), progress=Recorder())
    assert events[0] == ("start", [("intro", 1, 0), ("talk", 3, 0)])
    assert sum(1 for e in events if e[0] == "line") == 4
    assert sum(e[1] for e in events if e[0] == "frames") > 0
    assert ("stage", "assembling") in events


def test_render_holds_the_project_lock(tmp_path):
    project = podcast(tmp_path)
    with exclusive_lock(tmp_path / ".higgs" / "render.lock", what="someone"), \
            pytest.raises(LockedError, match="project Test Show"):
        render_project(project, FakeSession())


def test_status_reports_rendered_stale_and_missing(tmp_path):
    project = podcast(tmp_path)
    status = project_status(project)
    assert [s.state for s in status] == ["missing"] * 4 and not status.outputs_current

    render_project(project, FakeSession())
    status = project_status(project)
    assert [s.state for s in status] == ["rendered"] * 4 and status.outputs_current
    assert status.model_id == FakeSession.model_id and status.unresolved_voices == []

    edited = with_line(project, 1, 2, "Wonderful.")
    status = project_status(edited)
    assert [s.state for s in status] == ["rendered", "rendered", "rendered", "missing"]
    assert not status.outputs_current
    assert status.counts() == {"rendered": 3, "stale": 0, "missing": 1}

    # a cache entry newer than the build (say, regenerated after it): stale for that line
    older = os.stat(Store(tmp_path).path(status[1].key)).st_mtime - 10
    for key in (status[0].key, status[2].key):
        os.utime(Store(tmp_path).path(key), (older - 10, older - 10))
    os.utime(tmp_path / "build" / "test-show.wav", (older, older))
    assert [s.state for s in project_status(edited)] == ["rendered", "stale", "rendered", "missing"]

    render_project(edited, FakeSession())
    assert [s.state for s in project_status(edited)] == ["rendered"] * 4

    # a line generated but never assembled into the outputs is stale
    removed = replace(edited, sections=edited.sections[:1])
    assert [s.state for s in project_status(removed)] == ["rendered"]
    assert not project_status(removed).outputs_current


def test_status_with_another_models_ids_shows_nothing_rendered(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    status = project_status(project, {"model_id": "other", "codec_id": "other-codec"})
    # alice's recording was never encoded with that codec: the keys of the lines that clone it
    # need the model; bob's line (a described voice) is known to be missing
    assert status.unresolved_voices == ["alice"]
    assert [(s.speaker, s.state) for s in status] == [("alice", "unknown"), ("alice", "unknown"),
                                                      ("bob", "missing"), ("alice", "unknown")]
    assert status.counts() == {"rendered": 0, "stale": 0, "missing": 1, "unknown": 3}
    assert not status.outputs_current


def test_clean_removes_cache_and_build(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    removed = clean_project(project, build=False)
    assert not (tmp_path / ".higgs" / "cache").exists() and (tmp_path / "build").is_dir()
    assert str(tmp_path / ".higgs" / "cache") in removed
    render_project(project, FakeSession())
    clean_project(project)
    assert not (tmp_path / "build").exists() and not (tmp_path / ".higgs" / "cache").exists()
    assert {s.state for s in project_status(project)} == {"missing"}


# -- the CLI -------------------------------------------------------------------------


@pytest.fixture
def fake_model(fake_sessions):
    """`higgs project render` gets a FakeSession instead of loading a model; `.specs`: what it asked for."""
    return fake_sessions.each(lambda: FakeSession(is_random=True))


def test_cli_new_validate_render_status_clean(cli, fake_model, tmp_path):
    show = tmp_path / "show"
    result = cli("project", "new", show, "--template", "audiobook", "--title", "My Book")
    assert result.exit_code == 0, result.output
    assert (show / "project.yaml").is_file()
    assert cli("project", "validate", show).exit_code == 0

    status = json.loads(cli("--json", "project", "status", show).stdout)
    assert status["counts"]["missing"] == len(status["lines"]) > 0 and not status["outputs_current"]

    result = cli("project", "render", show, "--model", "some/model", "--device", "cpu", "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "rendered My Book" in result.stdout and "noise" in result.output
    spec = fake_model.specs[0]
    assert (spec.model, spec.revision, spec.device, spec.project_model) == ("some/model", None, "cpu", None)
    assert set(fake_model.made[0].batch_sizes) == {2}
    assert (show / "build" / "my-book.flac").is_file()

    result = cli("--json", "project", "render", show)
    summary = json.loads(result.stdout)
    assert summary["generated"] == 0 and summary["is_random"] and "noise" in summary["warning"]
    assert summary["outputs"]["master"].endswith("my-book.flac")

    status = json.loads(cli("--json", "project", "status", show / "project.yaml").stdout)
    assert status["outputs_current"] and status["counts"]["rendered"] == len(status["lines"])
    assert "up to date" in cli("project", "status", show).stdout

    result = cli("--json", "project", "clean", show, "--no-cache")
    assert result.exit_code == 0 and not (show / "build").exists()
    assert (show / ".higgs" / "cache").is_dir()
    assert cli("project", "clean", show).exit_code == 0
    assert not (show / ".higgs" / "cache").exists()


def test_cli_validate_lists_every_problem_with_its_position(cli, tmp_path):
    (tmp_path / "project.yaml").write_text(
        "title: Broken\n"
        "speakers:\n"
        "  host: {description: calm}\n"
        "script:\n"
        "  - task: bgm\n"
        "    speaker: host\n"
        "    text: Hi.\n"
        "  - task: hum\n"
        "    speaker: host\n"
        "    melody: a lullaby\n"
        "    text: la la\n")
    result = cli("project", "validate", tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path / 'project.yaml'}:5:5: task 'bgm' needs `music:`" in result.output
    assert f"{tmp_path / 'project.yaml'}:11:11: task 'hum' clones a voice" in result.output
    data = json.loads(cli("--json", "project", "validate", tmp_path).stdout)
    assert data["exit_code"] == 2 and len(data["problems"]) == 2


def test_cli_render_errors(cli, fake_model, tmp_path):
    show = tmp_path / "show"
    cli("project", "new", show)
    assert cli("project", "render", show, "--batch-size", "0").exit_code == 2
    with exclusive_lock(show / ".higgs" / "render.lock", what="x"):
        result = cli("project", "render", show)
    assert result.exit_code == 1 and "in use by another higgs process" in result.output
    assert cli("project", "render", tmp_path / "nowhere").exit_code == 2


@pytest.mark.slow
def test_render_with_a_real_tiny_model(tiny_session, tmp_path):
    """The real engine behind the same pipeline: voices encoded, context chunks, cache hits."""
    from higgs_cli.voices.library import VoiceLibrary

    library = VoiceLibrary(tmp_path / "library")
    library.add("narrator", write_voice(tmp_path / "n.wav", seconds=1.5, freq=180.0), "A short test recording.")
    project = make_project(tmp_path / "p", [
        section("story", "clone", ("alice", "One sentence here. Another sentence there."), max_chunk_chars=25),
        section("talk", "dialogue", ("bob", "Hello."), ("lib", "Hi [laugh]")),
    ], speakers={**make_project(tmp_path / "p", []).speakers, "lib": Speaker("lib", voice="narrator")})
    project = replace(project, defaults=replace(project.defaults, max_seconds=1.0))
    summary = render_project(project, tiny_session, library=library, batch_size=2)
    assert summary.is_random and summary.lines == 4 and summary.generated == 4
    assert (tmp_path / "p" / "build" / "test-show.wav").is_file()
    assert list((tmp_path / "library" / "narrator" / "codes").glob("*.npy"))
    again = render_project(project, tiny_session, library=library)
    assert (again.generated, again.cached) == (0, 4)
    assert [s.state for s in project_status(project, library=library)] == ["rendered"] * 4


def test_render_defaults_to_the_engines_batch_size():
    import inspect

    from higgs_cli.engine.api import DEFAULT_BATCH_SIZE

    assert inspect.signature(render_project).parameters["batch_size"].default == DEFAULT_BATCH_SIZE


def test_render_and_status_plan_with_the_registry_they_are_given(tmp_path):
    from higgs_cli.errors import ValidationError
    from higgs_cli.plugins.manager import get_tasks

    project = podcast(tmp_path)
    only_clone = {"clone": get_tasks()["clone"]}
    with pytest.raises(ValidationError, match="unknown task 'dialogue'"):
        render_project(project, FakeSession(), tasks=only_clone)
    with pytest.raises(ValidationError, match="unknown task 'dialogue'"):
        project_status(project, tasks=only_clone)
    render_project(project, FakeSession(), tasks=get_tasks())
    assert project_status(project, tasks=get_tasks()).outputs_current
