"""`project status` tells what a render would do: stale after an assembly change (issue 16.2),
"unknown" where only the model can tell (issue 16.3)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from fakes import FakeSession, make_project, section, write_voice

from higgs_cli.plugins.script import Speaker
from higgs_cli.project import project_status, render_project
from higgs_cli.voices.library import CODES_DIR, VoiceLibrary


def podcast(root, **output):
    return make_project(root, [
        section("intro", "clone", ("alice", "Welcome to the show.")),
        section("talk", "dialogue", ("alice", "How are you, Bob?"), ("bob", "Fine, thanks.")),
    ], **output)


def _changed(project, what):
    if what == "pause":
        return replace(project, defaults=replace(project.defaults, pause=1.5))
    if what == "title":
        return replace(project, title="Another Title")
    if what in ("author", "narrator"):
        return replace(project, **{what: "Someone Else"})
    return replace(project, output=replace(project.output, **dict([what])))


@pytest.mark.parametrize("what", ["pause", "title", ("loudness", -23.0), ("peak", -2.0), ("crossfade_ms", 50.0),
                                  ("subtitles", False), ("stems", False), ("format", "flac"),
                                  "author", "narrator", ("split", "section"), ("profile", "podcast")])
def test_anything_that_changes_the_build_makes_status_stale(tmp_path, what):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    assert project_status(project).outputs_current

    changed = _changed(project, what)
    status = project_status(changed)
    assert not status.outputs_current and not status.settings_current
    assert {s.state for s in status} == {"rendered"}  # every line is cached: a render only re-assembles

    session = FakeSession()
    render_project(changed, session)
    assert session.generate_calls == 0
    status = project_status(changed)
    assert status.outputs_current and status.settings_current


def test_a_setting_that_changes_no_output_keeps_status_current(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    assert project_status(_changed(project, ("max_hours", 2.0))).outputs_current


def test_a_build_from_before_manifests_had_an_assembly_digest_is_not_current(tmp_path):
    import json

    project = podcast(tmp_path)
    render_project(project, FakeSession())
    path = tmp_path / "build" / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["assembly"]
    path.write_text(json.dumps(manifest))
    assert not project_status(project).outputs_current


def _library_project(tmp_path):
    library = VoiceLibrary(tmp_path / "library")
    library.add("narrator", write_voice(tmp_path / "n.wav", seconds=1.0, freq=180.0), "A short test recording.")
    speakers = {"host": Speaker("host", voice="narrator"), "bob": Speaker("bob", description="deep voice")}
    project = make_project(tmp_path / "p", [
        section("intro", "clone", ("host", "Welcome to the show.")),
        section("talk", "dialogue", ("host", "Hello."), ("bob", "Hi."), ("host", "Bye.")),
    ], speakers=speakers)
    return library, project


def test_status_after_a_voice_is_imported_again_says_what_is_known(tmp_path):
    library, project = _library_project(tmp_path)
    render_project(project, FakeSession(), library=library)
    assert {s.state for s in project_status(project, library=library)} == {"rendered"}

    archive = tmp_path / "voices.tar.gz"
    library.export(["narrator"], archive)
    library.import_archive(archive, force=True)  # the same audio: its cached codes are kept
    assert {s.state for s in project_status(project, library=library)} == {"rendered"}
    shutil.rmtree(library.get("narrator").path / CODES_DIR)  # now they are gone (another codec, a cleanup)

    status = project_status(project, library=library)
    assert status.unresolved_voices == ["host"]
    hosts = [s.state for s in status if s.speaker == "host"]
    assert hosts == ["unknown"] * 3  # not "missing": only the model can tell, and it will find them cached
    assert all(s.key is None for s in status if s.state == "unknown")
    assert "missing" not in {s.state for s in status}
    assert not status.outputs_current and status.to_dict()["counts"]["unknown"] == 3

    session = FakeSession()
    summary = render_project(project, session, library=library)
    assert summary.generated == 0 and session.generate_calls == 0 and session.encode_calls == 1
    assert project_status(project, library=library).outputs_current


def test_a_line_that_hears_an_unknown_line_is_unknown_too(tmp_path):
    library = VoiceLibrary(tmp_path / "library")
    library.add("narrator", write_voice(tmp_path / "n.wav"), "A short test recording.")
    project = make_project(tmp_path / "p", [section(
        "story", "clone", ("host", "This is sentence one of the story. This is sentence two of the story."),
        max_chunk_chars=40)], speakers={"host": Speaker("host", voice="narrator")})
    status = project_status(project, ("model", "codec"), library=library)
    assert [s.state for s in status] == ["unknown", "unknown"]
