"""A speaker's `name:` is what subtitles and the review page show (issue 35.4); files and references keep the key."""

from __future__ import annotations

from fakes import FakeSession, make_project, section

from higgs_cli.plugins.script import Speaker
from higgs_cli.project.building.render import render_project


def test_subtitles_and_the_review_page_show_the_display_name(tmp_path):
    speakers = {"Old_Man": Speaker("Old_Man", description="an old male voice", display_name="Old Man"),
                "ada": Speaker("ada", description="a young female voice")}
    project = make_project(tmp_path, [section("gate", "dialogue", ("Old_Man", "Who goes there?"), ("ada", "Me."))],
                           speakers=speakers)
    summary = render_project(project, FakeSession())
    srt = summary.outputs["srt"].read_text(encoding="utf-8")
    assert "Old Man: Who goes there?" in srt and "Old_Man" not in srt and "ada: Me." in srt
    assert "<v Old Man>Who goes there?" in summary.outputs["vtt"].read_text(encoding="utf-8")
    review = summary.outputs["review"].read_text(encoding="utf-8")
    assert "Old Man" in review
    assert sorted(p.name for p in (tmp_path / "build" / "stems").iterdir()) == ["gate_001_Old_Man.wav",
                                                                                 "gate_002_ada.wav"]
