"""The producer's editing loop through the CLI (issue 17): edit locality, the lexicon, approvals,
takes and pick, snapshots and restore, partial renders. A FakeSession stands in for the model."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from fakes import FakeSession, write_voice

YAML = """\
title: Edit Test
speakers:
  alice: {{audio: voices/alice.wav, transcript: "Hello, I am Alice."}}
  bob: {{description: deep male voice}}
defaults: {{temperature: {temperature}}}
guards: {{enabled: false}}
{lexicon}
script:
  - id: intro
    task: clone
    speaker: alice
    lines:
      - {first}
      - The sun was up over the hills.
      - id: walk
        text: Nguyen walked to the market.
      - The end of the morning came.
  - id: talk
    task: dialogue
    lines:
      - alice: How are you today?
      - bob: Fine, thanks.
"""


def write(folder: Path, *, first="One fine morning, Nguyen woke early.", temperature=0.7, lexicon="") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "voices" / "alice.wav").exists():
        write_voice(folder / "voices" / "alice.wav")
    (folder / "project.yaml").write_text(YAML.format(first=first, temperature=temperature, lexicon=lexicon),
                                         encoding="utf-8")
    return folder


@pytest.fixture
def fake_model(fake_sessions) -> list[FakeSession]:
    """`higgs project render` and `takes` get a FakeSession instead of loading a model; those it gave."""
    return fake_sessions.made


def run_json(cli, *args):
    result = cli("--json", "project", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stems(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "build" / "stems").iterdir())}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_one_edited_clone_line_generates_only_it_and_every_other_stem_is_identical(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    assert run_json(cli, "render", show)["generated"] == 6
    before = stems(show)
    write(show, first="One grey morning, Nguyen woke late.")
    summary = run_json(cli, "render", show)
    assert summary["generated"] == 1 and summary["cached"] == 5
    after = stems(show)
    assert after.keys() == before.keys()
    assert [name for name in before if before[name] != after[name]] == ["intro_001_alice.wav"]
    # intro:2 and intro:3 heard the old intro:1: status marks them, --refresh-context redoes them and intro:4,
    # which hears the redone intro:2 and intro:3
    assert summary["context_changed"] == ["intro:2", "intro:3"]
    status = run_json(cli, "status", show)
    assert [line["ref"] for line in status["lines"] if line["context_changed"]] == ["intro:2", "intro:3"]
    assert status["context_changed"] == 2
    assert "context changed" in cli("project", "status", show).stdout
    refreshed = run_json(cli, "render", show, "--refresh-context")
    assert refreshed["generated"] == 3 and refreshed["context_changed"] == []
    assert run_json(cli, "render", show, "--refresh-context")["generated"] == 0  # a fixed point
    # the same bytes as a render of the edited project from an empty cache
    fresh = tmp_path / "fresh"
    shutil.copytree(show, fresh, ignore=shutil.ignore_patterns(".higgs", "build"))
    run_json(cli, "render", fresh)
    assert stems(fresh) == stems(show)


def test_a_changed_lexicon_entry_renders_exactly_the_lines_holding_it(cli, fake_model, tmp_path):
    show = write(tmp_path / "show", lexicon="lexicon:\n  nguyen: Win\n  market: {say: mar-ket, case: true}")
    run_json(cli, "render", show)
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    walk = manifest["lines"][2]
    assert walk["ref"] == "intro:3" and walk["id"] == "walk"
    assert walk["prompt_text"] == "Win walked to the mar-ket." and walk["text"] == "Nguyen walked to the market."
    assert "Nguyen" in (show / "build" / "edit-test.srt").read_text()  # subtitles keep the script's words
    write(show, lexicon="lexicon:\n  nguyen: Wen\n  market: {say: mar-ket, case: true}")
    summary = run_json(cli, "render", show)
    assert summary["generated"] == 2  # intro:1 and intro:3 hold "Nguyen"
    assert [r.text for r in fake_model[-1].requests] == ["One fine morning, Wen woke early.",
                                                         "Wen walked to the mar-ket."]


def test_validate_warns_about_lexicon_entries_that_match_nothing(cli, tmp_path):
    show = write(tmp_path / "show", lexicon="lexicon:\n  Nguyen: Win\n  Zanzibar: Zan\n  Market: {say: x, case: true}")
    data = run_json(cli, "validate", show)
    assert len(data["warnings"]) == 2
    assert "project.yaml:9:3: lexicon entry 'Zanzibar' matches no line" in data["warnings"][0]
    assert "'Market'" in data["warnings"][1]  # case: true, and the script says "market"


def test_lexicon_file_is_read_and_lexicon_entries_win(cli, fake_model, tmp_path):
    show = write(tmp_path / "show", lexicon="lexicon_file: words.yaml\nlexicon:\n  market: bazaar")
    (show / "words.yaml").write_text("Nguyen: Win\nmarket: shop\n", encoding="utf-8")
    run_json(cli, "render", show)
    texts = [r.text for r in fake_model[-1].requests]
    assert "Win walked to the bazaar." in texts


def test_an_approved_line_keeps_its_bytes_through_a_temperature_change(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    before = stems(show)
    assert run_json(cli, "approve", show, "walk", "talk:2")["approved"] == ["intro:3", "talk:2"]
    lock = (show / "project.lock.yaml").read_text()
    assert "walk:" in lock and "talk:2:" in lock and "approved:" in lock
    write(show, temperature=0.9)
    summary = run_json(cli, "render", show)
    assert summary["generated"] == 4 and summary["approved"] == 2
    after = stems(show)
    assert after["walk.wav"] == before["walk.wav"]
    assert after["talk_002_bob.wav"] == before["talk_002_bob.wav"]
    assert after["intro_001_alice.wav"] != before["intro_001_alice.wav"]
    status = run_json(cli, "status", show)
    assert [line["ref"] for line in status["lines"] if line["approved"]] == ["intro:3", "talk:2"]
    assert status["outputs_current"]
    # --rerender-approved lets them follow the project
    assert run_json(cli, "render", show, "--rerender-approved")["generated"] == 2
    assert stems(show)["walk.wav"] != before["walk.wav"]
    # the approval holds: without the flag the approved audio comes back
    assert run_json(cli, "render", show)["generated"] == 0
    assert stems(show)["walk.wav"] == before["walk.wav"]
    # its own text changed: no longer approved, marked, rendered anew
    (show / "project.yaml").write_text((show / "project.yaml").read_text().replace(
        "Nguyen walked to the market.", "Nguyen ran to the market."))
    status = run_json(cli, "status", show)
    walk = status["lines"][2]
    assert walk["changed_since_approval"] and not walk["approved"] and status["changed_since_approval"] == 1
    assert run_json(cli, "render", show)["generated"] == 1
    assert run_json(cli, "unapprove", show, "--all")["unapproved"] == ["intro:3", "talk:2"]
    assert "approved:" not in (show / "project.lock.yaml").read_text()


def test_approve_section_and_all(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    assert run_json(cli, "approve", show, "--section", "talk")["approved"] == ["talk:1", "talk:2"]
    assert len(run_json(cli, "approve", show, "--all")["approved"]) == 6
    assert "approved" in cli("project", "status", show).stdout


def test_takes_and_pick(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    made = run_json(cli, "takes", show, "talk:2", "--count", "3")
    assert made["made"] == [1, 2, 3] and len(fake_model[-1].calls) == 1  # one batch
    assert len({take["seed"] for take in made["takes"]}) == 3
    listed = run_json(cli, "takes", show, "talk:2")
    assert [t["take"] for t in listed["takes"]] == [1, 2, 3] and listed["picked"] == 0
    assert all(t["cached"] for t in listed["takes"])
    assert "pick one with" in cli("project", "takes", show, "talk:2").stdout

    picked = run_json(cli, "pick", show, "talk:2", "2")
    assert picked["seed"] == made["takes"][1]["seed"]
    lock = (show / "project.lock.yaml").read_text()
    assert f"seed: {picked['seed']}" in lock and "take: 2" in lock
    summary = run_json(cli, "render", show)
    assert summary["generated"] == 0  # the take was cached
    assert run_json(cli, "status", show)["lines"][5]["take"] == 2
    mine = stems(show)["talk_002_bob.wav"]
    # a fresh clone (project.yaml, the lock file, the voice) renders the same audio
    fresh = tmp_path / "fresh"
    shutil.copytree(show, fresh, ignore=shutil.ignore_patterns(".higgs", "build"))
    run_json(cli, "render", fresh)
    assert stems(fresh)["talk_002_bob.wav"] == mine
    # take 0: back to the line's own seed
    run_json(cli, "pick", show, "talk:2", "0")
    assert "seed:" not in (show / "project.lock.yaml").read_text()


def test_restore_writes_an_older_snapshot_byte_for_byte_without_a_model(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    first = run_json(cli, "render", show)
    build = show / "build"
    old = {p.relative_to(build).as_posix(): sha(p) for p in build.rglob("*") if p.is_file()}
    write(show, first="A different first line, Nguyen.")
    second = run_json(cli, "render", show)
    listed = run_json(cli, "snapshots", show)["snapshots"]
    assert [s["id"] for s in listed] == [first["snapshot"], second["snapshot"]]
    assert listed[0]["generated"] == 6 and listed[1]["generated"] == 1 and listed[0]["model"]
    assert "generated" in cli("project", "snapshots", show).stdout
    models = len(fake_model)
    run_json(cli, "clean", show, "--build")  # the cache and the build go; the snapshots stay
    restored = run_json(cli, "restore", show, first["snapshot"])
    assert len(fake_model) == models
    assert {p.relative_to(build).as_posix(): sha(p) for p in build.rglob("*") if p.is_file()} == old
    assert restored["snapshot"] == first["snapshot"]
    run_json(cli, "clean", show, "--snapshots")
    result = cli("project", "restore", show, first["snapshot"])
    assert result.exit_code != 0 and "no snapshots" in result.output and "Traceback" not in result.output


def test_partial_render_generates_only_the_chosen_lines_and_reports_the_rest(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    summary = run_json(cli, "render", show, "--section", "talk")
    assert summary["generated"] == 2 and summary["missing"] == ["intro:1", "intro:2", "intro:3", "intro:4"]
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    assert [m["missing"] for m in manifest["lines"]] == [True] * 4 + [False] * 2
    assert sorted(stems(show)) == ["talk_001_alice.wav", "talk_002_bob.wav"]
    # a line that hears unrendered lines brings them along, reported as context
    summary = run_json(cli, "render", show, "--line", "walk")
    assert summary["generated"] == 3 and summary["context_lines"] == ["intro:1", "intro:2"]
    assert summary["missing"] == ["intro:4"]
    result = cli("project", "render", show, "--line", "intro:4")
    assert result.exit_code == 0 and "never rendered" not in result.output
    assert run_json(cli, "status", show)["outputs_current"]


def test_takes_pick_and_an_edit_with_a_real_tiny_model(tiny_session, tmp_path):
    """The real engine behind takes (one batch, other seeds), pick, approval and edit locality."""
    from dataclasses import replace

    from fakes import make_project, section

    from higgs_cli.project.building.render import render_project
    from higgs_cli.project.commands.approvals import approve
    from higgs_cli.project.commands.takes import list_takes, make_takes, pick

    def project_with(second: str):
        project = make_project(tmp_path / "p", [section("story", "clone", ("alice", "One."), ("alice", second),
                                                        ("alice", "Three."))])
        return replace(project, defaults=replace(project.defaults, max_seconds=0.6))

    project = project_with("Two.")
    assert render_project(project, tiny_session).generated == 3
    made = make_takes(project, tiny_session, "story:2", count=2)
    assert [t["take"] for t in made["takes"]] == [1, 2] and all(t["cached"] for t in made["takes"])
    pick(project, "story:2", 2)
    summary = render_project(project, tiny_session)
    assert summary.generated == 0  # the picked take was cached
    assert list_takes(project, "story:2")["picked"] == 2
    approve(project, ["story:3"])
    edited = project_with("Two, edited.")
    summary = render_project(edited, tiny_session)
    # story:3 heard the old story:2, but it is approved: it keeps its audio, unmarked, even with --refresh-context
    assert summary.generated == 1 and summary.context_changed == [] and summary.approved == 1
    assert render_project(edited, tiny_session, refresh_context=True).generated == 0


def test_an_approved_line_keeps_its_audio_through_another_model_revision(tmp_path):
    from fakes import make_project, section

    from higgs_cli.project import project_status, render_project
    from higgs_cli.project.commands.approvals import approve

    class NextRevision(FakeSession):
        model_id = "fake-model-sha-2"

    project = make_project(tmp_path, [section("talk", "dialogue", ("alice", "Hi."), ("bob", "Hello."))])
    render_project(project, FakeSession())
    before = stems(tmp_path)
    approve(project, ["talk:2"])
    summary = render_project(project, NextRevision())
    assert summary.generated == 1 and summary.approved == 1
    after = stems(tmp_path)
    assert after["talk_002_bob.wav"] == before["talk_002_bob.wav"]  # the fake's audio ignores the model id:
    # that alice's line was generated again is what shows the new revision's key
    assert [line.approved for line in project_status(project)] == [False, True]


def test_takes_are_checked_by_the_quality_guards(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    yaml = (show / "project.yaml").read_text()
    long = "Fine, thanks, and I have a great deal to tell you about my very long day at the office."
    (show / "project.yaml").write_text(yaml.replace("guards: {enabled: false}\n", "")
                                       .replace("Fine, thanks.", long))
    made = run_json(cli, "takes", show, "talk:1", "--count", "2")  # talk:1 hears nothing
    assert all(take["flags"] == [] or take["flags"][0]["code"] for take in made["takes"])
    made = run_json(cli, "takes", show, "talk:2", "--count", "2")
    assert all(any(f["code"] == "too_short" for f in take["flags"]) for take in made["takes"])  # the fake's
    assert "too_short" in cli("project", "takes", show, "talk:2").stdout  # tones are short for 19 words


def test_approving_a_flagged_line_warns(cli, fake_model, tmp_path):
    """Issue 35.7: an approval keeps the audio; one the quality guards flagged is named in a warning."""
    from higgs_cli.engine.request import GenerationResult
    from higgs_cli.project.commands.approvals import current_lines
    from higgs_cli.project.reading.load import load_project

    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    cur = current_lines(load_project(show))
    i = cur.refs.resolve("talk:2")[0]
    entry = cur.store.get(cur.keys[i])
    cur.store.put(cur.keys[i], GenerationResult(codes=entry.codes, audio=entry.audio, finished=entry.finished),
                  {**entry.meta, "flags": [{"code": "silence", "message": "2.1 s of silence"}]})
    quiet = cli("project", "approve", show, "talk:1")
    assert quiet.exit_code == 0 and "warning:" not in quiet.stderr
    loud = cli("project", "approve", show, "talk:1", "talk:2")
    assert loud.exit_code == 0 and "warning:" in loud.stderr and "talk:2 (silence)" in loud.stderr
    assert run_json(cli, "approve", show, "--section", "talk")["flagged"] == {"talk:2": ["silence"]}
