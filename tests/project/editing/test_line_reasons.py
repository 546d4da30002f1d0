"""`status` names the real reason a line will be generated again (issue 32.5): text, lexicon, voice, scene,
sampling, seed, model, cache, context, instead of "the title, a pause or an output setting"."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_edit_loop import run_json, write

CATCH_ALL = "the title, a pause or an output setting"


@pytest.fixture
def fake_model(fake_sessions):
    return fake_sessions.made


def edit(show: Path, *pairs: tuple[str, str]) -> None:
    text = (show / "project.yaml").read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    (show / "project.yaml").write_text(text)


def reasons(data: dict) -> dict[str, list[str]]:
    return {line["ref"]: line["reasons"] for line in data["lines"]}


def test_each_line_says_what_changed_for_it(cli, fake_model, tmp_path):
    from higgs_cli.project import line_reasons, load_project, project_status

    show = write(tmp_path / "show", lexicon="lexicon:\n  market: bazaar")
    run_json(cli, "render", show)
    edit(show, ("One fine morning", "One grey morning"),  # intro:1's words
         ("  market: bazaar", "  market: bazaar\n  hills: hillz"),  # what intro:2 reads, not its words
         ("text: Nguyen walked to the market.", "text: Nguyen walked to the market.\n        scene: A windy street."),
         ("    task: dialogue\n", "    task: dialogue\n    temperature: 0.9\n"),  # the talk section's sampling
         ("deep male voice", "bright young voice"))  # bob's voice
    status = run_json(cli, "status", show)
    # a dialogue's scene lists its cast's described voices: alice's talk:1 is prompted with bob's too
    assert reasons(status) == {"intro:1": ["text"], "intro:2": ["lexicon"], "intro:3": ["scene"], "intro:4": [],
                               "talk:1": ["voice", "sampling"], "talk:2": ["voice", "sampling"]}
    assert status["reasons"] == {"text": 1, "lexicon": 1, "voice": 2, "scene": 1, "sampling": 2}
    assert status["settings_current"]
    human = cli("project", "status", show).stdout
    assert CATCH_ALL not in human and "why: voice, sampling" in human
    assert "to generate: 1 text, 1 lexicon, 2 voice, 1 scene, 2 sampling" in human
    assert line_reasons(load_project(show))["intro:3"]["reasons"] == ["scene"]

    run_json(cli, "render", show)
    edit(show, ("title: Edit Test", "title: Edit Test, Second Cut"))  # not a line: the catch-all is true now
    status = run_json(cli, "status", show)
    assert not status["settings_current"]  # no line is generated; intro:4 heard the old intro:2 and intro:3
    assert reasons(status) == {"intro:1": [], "intro:2": [], "intro:3": [], "intro:4": ["context"],
                               "talk:1": [], "talk:2": []}
    assert CATCH_ALL in cli("project", "status", show).stdout
    other = project_status(load_project(show), ("another-model-sha", "fake-codec-sha-1"))
    assert {line.ref: line.reasons for line in other}["talk:2"] == ["model"]

    # the cache cleaned: nothing changed but the audio is gone (alice's lines wait for her voice's codes)
    run_json(cli, "clean", show, "--no-build")
    cleaned = run_json(cli, "status", show)
    assert reasons(cleaned)["talk:2"] == ["cache"] and cleaned["lines"][0]["state"] == "unknown"
    # with the entries gone, the build itself still tells the text and the sampling apart
    edit(show, ("temperature: 0.9", "temperature: 0.95"), ("Fine, thanks.", "Fine, thank you."))
    assert reasons(run_json(cli, "status", show))["talk:2"] == ["text", "sampling"]


def test_a_new_line_and_a_context_change(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    edit(show, ("      - The end of the morning came.\n",
                "      - The end of the morning came.\n      - A new last line.\n"),
         ("One fine morning", "One grey morning"))
    assert reasons(run_json(cli, "status", show))["intro:5"] == ["new"]
    run_json(cli, "render", show)
    found = reasons(run_json(cli, "status", show))  # intro:2 and intro:3 heard the old intro:1
    assert found["intro:2"] == ["context"] and found["intro:1"] == []


def test_every_part_of_a_key_has_a_name():
    from higgs_cli.engine.request import GenerationRequest
    from higgs_cli.project.folder.store import RECIPE_PARTS, line_recipe

    fields = {f for group in RECIPE_PARTS.values() for f in group}
    assert fields == set(line_recipe(GenerationRequest(text="x"), model_id="m", codec_id="c"))
