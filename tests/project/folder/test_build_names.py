"""Build file names keep every script's letters, and a build never keeps a previous render's
leftovers beside it (issue 16.11)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from fakes import FakeSession, make_project, section

from higgs_cli.plugins.script import Speaker
from higgs_cli.project.building.render import render_project
from higgs_cli.project.folder.names import safe_name, slugify


@pytest.mark.parametrize(("title", "slug"), [
    ("Test Show", "test-show"), ("游戏对白", "游戏对白"), ("Ep [draft] #1", "ep-draft-1"), ("Café Olé", "café-olé"),
    ("../../etc/passwd", "etc-passwd"), ("a/b\\c:d*e?f", "a-b-c-d-e-f"), ("???", "project"), ("", "project"),
    ("snake_case name", "snake-case-name"),
])
def test_slugify(title, slug):
    assert slugify(title) == slug


def test_names_stay_within_file_name_limits():
    assert len(slugify("长" * 500).encode()) <= 160 and set(slugify("长" * 500)) == {"长"}
    assert safe_name(None) == "none" and safe_name("小明") == "小明" and safe_name("a b/c") == "a-b-c"
    assert safe_name("..") == "none"


def test_unicode_speakers_and_titles_name_their_files(tmp_path):
    speakers = {"小明": Speaker("小明", description="young voice"), "bob": Speaker("bob", description="deep")}
    project = make_project(tmp_path, [section("对白", "dialogue", ("小明", "你好。"), ("bob", "Hi."))],
                           speakers=speakers, title="游戏对白")
    summary = render_project(project, FakeSession())
    build = tmp_path / "build"
    assert summary.outputs["master"] == build / "游戏对白.wav"
    assert sorted(p.name for p in (build / "stems").iterdir()) == ["对白_001_小明.wav", "对白_002_bob.wav"]
    assert (build / "游戏对白.srt").is_file()


def test_a_title_change_removes_the_old_master_and_subtitles(tmp_path):
    project = make_project(tmp_path, [section("t", "dialogue", ("alice", "Hello."), ("bob", "Hi."))])
    render_project(project, FakeSession())
    build = tmp_path / "build"
    (build / "notes.txt").write_text("mine")  # not a render's: stays
    render_project(replace(project, title="New Name"), FakeSession())
    assert sorted(p.name for p in build.iterdir()) == ["manifest.json", "new-name.srt", "new-name.vtt",
                                                       "new-name.wav", "notes.txt", "review.html", "stems"]


def test_outputs_turned_off_are_removed(tmp_path):
    project = make_project(tmp_path, [section("t", "dialogue", ("alice", "Hello."), ("bob", "Hi."))])
    render_project(project, FakeSession())
    render_project(replace(project, output=replace(project.output, stems=False, subtitles=False, format="flac")),
                   FakeSession())
    build = tmp_path / "build"
    assert sorted(p.name for p in build.iterdir()) == ["manifest.json", "review.html", "test-show.flac"]
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["outputs"] == {"master": "test-show.flac", "review": "review.html"}


def test_a_custom_output_dir_loses_only_what_its_manifest_listed(tmp_path):
    project = make_project(tmp_path / "p", [section("t", "dialogue", ("alice", "Hello."))])
    out = tmp_path / "out"
    render_project(project, FakeSession(), out_dir=out)
    render_project(replace(project, title="Renamed"), FakeSession(), out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "renamed.srt", "renamed.vtt", "renamed.wav",
                                                     "review.html", "stems"]


def test_a_line_with_an_id_names_its_stem_and_names_never_collide(tmp_path):
    from higgs_cli.engine.request import GenerationRequest
    from higgs_cli.plugins.task import PlannedLine
    from higgs_cli.project.folder.names import stem_names
    from higgs_cli.project.reading.load import load_project

    (tmp_path / "project.yaml").write_text("""\
title: Game
speakers:
  guard: {description: gruff}
  npc: {description: bright}
script:
  - id: gate
    task: dialogue
    lines:
      - {id: guard_halt, guard: "Halt! Who goes there?"}
      - npc: Just a traveller.
      - {id: guard_pass, guard: "Pass, then."}
""", encoding="utf-8")
    render_project(load_project(tmp_path), FakeSession())
    assert sorted(p.name for p in (tmp_path / "build" / "stems").iterdir()) == [
        "gate_002_npc.wav", "guard_halt.wav", "guard_pass.wav"]
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert "stems/guard_halt.wav" in manifest["outputs"]["stems"]

    def line(section, speaker):
        return PlannedLine(section, speaker, "x", GenerationRequest(text="x"), 0.0)

    planned = [line("a", "s"), line("a", "s"), line("a", "s"), line("b", "t"), line("b", "t")]
    # numbered from 1 as references are: a_003_s.wav is a:3 (issue 35.5)
    assert stem_names(planned) == ["a_001_s.wav", "a_002_s.wav", "a_003_s.wav", "b_001_t.wav", "b_002_t.wav"]
    # chunks of one id, an id equal to another line's name, and two ids that differ only in case
    assert stem_names(planned, ["long", "long", "b_001_t", None, "B_001_T"]) == [
        "long_1.wav", "long_2.wav", "b_001_t.wav", "b_001_t_2.wav", "B_001_T_3.wav"]
