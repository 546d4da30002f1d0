"""The studio's edits of project.yaml (higgs_cli/studio/yaml_edit.py), without a browser or a model: each form a
line takes is edited in place with comments, order and quoting kept; a stale page, a bad value and a value the
loader refuses change nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from higgs_cli.errors import UsageError
from higgs_cli.studio.state import StaleError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def jingle(tmp_path):
    """The example jingle: a plain `- text` line, a long-form line with a comment, a one-text section."""
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.studio import Studio

    shutil.copytree(ROOT / "projects" / "jingle", tmp_path / "jingle")
    return Studio(tmp_path / "jingle", tasks=get_tasks())


def _edit(studio, ref, field, value):
    from higgs_cli.studio.yaml_edit import edit_line

    return edit_line(studio, ref, field, value, seen_sha=studio.sha())


def _changed(before: str, after: str) -> tuple[list[str], list[str]]:
    """(lines only in before, lines only in after), in order."""
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_each_form_of_line_is_edited_in_place_and_the_rest_kept(jingle):
    file = jingle.layout.project_file
    original = file.read_text(encoding="utf-8")
    _edit(jingle, "hum:1", "text", "mm mm, da dum")  # `- text`
    assert _changed(original, file.read_text(encoding="utf-8")) == (
        ["      - mm mm mmm, da da dum"], ["      - mm mm, da dum"])
    _edit(jingle, "hum:1", "pause", 0.5)  # a plain line that gains a key becomes a mapping
    _edit(jingle, "hum:2", "seed", None)  # a key removed: the line's own seed is inherited again
    _edit(jingle, "tagline:1", "scene", "A bright kitchen.")  # a section's own text: the section is the line
    after = file.read_text(encoding="utf-8")
    assert _changed(original, after) == (
        ["      - mm mm mmm, da da dum", "        seed: 7                    # a second take with its own seed"],
        ["      - text: mm mm, da dum", "        pause: 0.5", "    scene: A bright kitchen."])
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    project = jingle.project()
    hum, tagline = project.sections
    assert (hum.lines[0].text, hum.lines[0].pause, hum.lines[1].seed) == ("mm mm, da dum", 0.5, None)
    assert tagline.scene == "A bright kitchen."  # a one-text section's keys are the section's


def test_quoting_is_kept_and_a_value_that_needs_quotes_gets_them(tmp_path):
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.studio import Studio

    shutil.copytree(ROOT / "projects" / "podcast", tmp_path / "podcast")
    podcast = Studio(tmp_path / "podcast", tasks=get_tasks())
    file = podcast.layout.project_file
    original = file.read_text(encoding="utf-8")
    _edit(podcast, "talk:3", "text", "That sounds tiring. [laugh]")
    _edit(podcast, "talk:1", "text", "[laugh] So, Theo: the train?")  # plain before; a leading [ needs quotes
    removed, added = _changed(original, file.read_text(encoding="utf-8"))
    assert added == ["      - maya: '[laugh] So, Theo: the train?'", '      - maya: "That sounds tiring. [laugh]"']
    assert podcast.project().sections[1].lines[0].text == "[laugh] So, Theo: the train?"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("seed", "-1", "whole number"), ("seed", True, "whole number"), ("pause", "soon", "number of seconds"),
    ("pause", float("nan"), "number of seconds"), ("text", "", "cannot be empty"), ("text", 5, "must be text"),
    ("speaker", "juno", "cannot be edited"), ("text", "x" * 30_000, "at most"),
    ("text", "a bell \x07 rings", "control character"),  # refused by the loader, with its position
    ("pause", -2, "edit was refused"),
])
def test_a_bad_value_is_refused_and_nothing_is_written(jingle, field, value, words):
    before = jingle.layout.project_file.read_bytes()
    with pytest.raises(UsageError, match=words):
        _edit(jingle, "hum:2", field, value)
    assert jingle.layout.project_file.read_bytes() == before
    assert [p.name for p in jingle.root.iterdir() if "tmp" in p.name] == []  # no temporary left behind


def test_a_page_that_read_another_file_is_refused(jingle):
    from higgs_cli.studio.yaml_edit import edit_line

    seen = jingle.sha()
    file = jingle.layout.project_file
    file.write_text(file.read_text(encoding="utf-8") + "# edited in an editor\n", encoding="utf-8")
    changed = file.read_bytes()
    with pytest.raises(StaleError, match="changed on disk since this page read it"):
        edit_line(jingle, "hum:1", "text", "la", seen_sha=seen)
    assert file.read_bytes() == changed
