"""Takes are audio files, and a pick keeps its audio (issue 32.1, 32.2). A FakeSession stands in for the model."""

from __future__ import annotations

import json

import pytest
import soundfile
from test_edit_loop import run_json, stems, write

HALL = "scene: A large echoing hall."  # a project-wide change, through write()'s top-level slot
SUN = "The sun was up over the hills."


def read_audio(path):
    return soundfile.read(str(path), dtype="float32")


@pytest.fixture
def fake_model(fake_sessions):
    return fake_sessions.made


def test_the_issue_story_a_pick_after_a_scene_change_keeps_the_takes_audio(cli, fake_model, tmp_path):
    """Issue 32: after a scene change, `pick intro:2 1` and a render generated a new performance while
    `takes` listed take 1 as cached and picked. Now the render uses take 1's audio, and both say so."""
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    made = run_json(cli, "takes", show, "intro:2", "--count", "2")
    files = [take["file"] for take in made["takes"]]
    assert files == [str(show / "build" / "takes" / "intro~2" / f"take-{k}.wav") for k in (1, 2)]
    take_audio, rate = read_audio(files[0])
    assert rate == 24000 and take_audio.size > 0
    write(show, lexicon=HALL)
    picked = run_json(cli, "pick", show, "intro:2", "1")
    assert picked["key"] == made["takes"][0]["key"]
    assert picked["uses"]["audio"] == "take" and not picked["uses"]["generate"]

    listed = run_json(cli, "takes", show, "intro:2")
    one, two = listed["takes"]
    assert one["picked"] and one["cached"] and one["changes"] == ["scene"] and not one["current"]
    assert two["changes"] == ["scene"] and not two["picked"]
    assert listed["uses"] == {"audio": "take", "take": 1, "generate": False, "changes": ["scene"],
                              "says": "take 1's audio, kept (made under other settings: scene)"}
    human = cli("project", "takes", show, "intro:2").stdout
    assert "the next render uses take 1's audio, kept (made under other settings: scene)" in human
    assert "take-1.wav" in human and "other scene" in human
    line = run_json(cli, "status", show)["lines"][1]
    assert line["take"] == 1 and line["take_kept"] and line["pick_changes"] == ["scene"] and line["reasons"] == []
    assert "take 1 kept, made under other scene" in cli("project", "status", show).stdout

    models = len(fake_model)
    summary = run_json(cli, "render", show)
    assert summary["generated"] == 5  # every line but intro:2 hears the new scene
    assert SUN not in [r.text for r in fake_model[models].requests]
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    assert manifest["lines"][1]["key"] == made["takes"][0]["key"]
    stem, _ = read_audio(show / "build" / "stems" / "intro_002_alice.wav")
    assert stem.shape == take_audio.shape and abs(stem - take_audio).max() < 1e-4  # what was heard is what plays
    assert run_json(cli, "render", show)["generated"] == 0
    status = run_json(cli, "status", show)
    assert status["lines"][1]["take"] == 1 and status["outputs_current"]


def test_unpick_and_a_text_edit_end_the_pick_and_the_takes(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    made = run_json(cli, "takes", show, "intro:2", "--count", "1")
    write(show, lexicon=HALL)
    run_json(cli, "pick", show, "intro:2", "1")
    assert run_json(cli, "render", show)["generated"] == 5
    unpicked = run_json(cli, "unpick", show, "intro:2")
    assert unpicked["picked"] == 0 and unpicked["uses"]["audio"] == "own" and unpicked["uses"]["generate"]
    assert "seed:" not in (show / "project.lock.yaml").read_text()
    models = len(fake_model)
    assert run_json(cli, "render", show)["generated"] == 1
    assert [r.text for r in fake_model[models].requests] == [SUN]
    # picked again, then the line's own text changes: the pick and the takes end, the files go at the next render
    run_json(cli, "pick", show, "intro:2", "1")
    folder = show / "build" / "takes" / "intro~2"
    assert (folder / "take-1.wav").is_file()
    (show / "project.yaml").write_text((show / "project.yaml").read_text().replace(SUN, "The sun was low."))
    listed = run_json(cli, "takes", show, "intro:2")
    assert listed["takes"] == [] and listed["picked"] == 0 and listed["uses"]["generate"]
    summary = run_json(cli, "render", show)
    assert summary["generated"] == 1 and not folder.exists()
    assert "intro:2" not in json.loads((show / ".higgs" / "takes.json").read_text())
    assert made["takes"][0]["key"] not in json.dumps(run_json(cli, "status", show))


def test_a_pick_whose_audio_is_gone_is_generated_from_its_seed_and_clean_drops_takes(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    made = run_json(cli, "takes", show, "talk:2", "--count", "2")
    run_json(cli, "pick", show, "talk:2", "2")
    assert run_json(cli, "render", show)["generated"] == 0
    before = stems(show)["talk_002_bob.wav"]
    removed = run_json(cli, "clean", show)["removed"]
    assert str(show / ".higgs" / "takes.json") in removed and not (show / "build" / "takes").exists()
    listed = run_json(cli, "takes", show, "talk:2")
    assert listed["takes"] == [] and listed["picked"] == 2
    assert listed["uses"]["audio"] == "seed" and listed["uses"]["generate"]
    assert "take 2's seed with the current settings: generated" in listed["uses"]["says"]
    run_json(cli, "render", show)  # same settings, same seed: the same audio as the take
    assert stems(show)["talk_002_bob.wav"] == before
    assert json.loads((show / "build" / "manifest.json").read_text())["lines"][5]["key"] == made["takes"][1]["key"]


def test_line_names_become_safe_folder_names():
    from higgs_cli.project.layout import ProjectLayout, line_folder

    assert line_folder("intro:2") == "intro~2" and line_folder("walk") == "walk"
    assert line_folder("w.a-b_c:3") == "w.a-b_c~3"
    odd = line_folder("../../etc/passwd")
    assert "/" not in odd and not odd.startswith(".") and odd != line_folder("..-..-etc-passwd")
    assert ProjectLayout("/p").take_audio("talk:2", 3).as_posix() == "/p/build/takes/talk~2/take-3.wav"


def test_takes_never_write_through_a_link_planted_in_the_build(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (show / "build").mkdir()
    (show / "build" / "takes").symlink_to(elsewhere)
    result = cli("project", "takes", show, "talk:1", "--count", "1")
    assert result.exit_code == 2 and "symbolic link" in result.output and "Traceback" not in result.output
    assert not any(elsewhere.iterdir()) and not (show / ".higgs" / "takes.json").exists()
    assert not fake_model or not fake_model[-1].requests  # refused before anything was generated
