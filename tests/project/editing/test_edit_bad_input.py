"""Bad input to the editing loop (issue 17): clear errors with positions, nothing changed, no model."""

from __future__ import annotations

import json
import shutil

import pytest
from test_edit_loop import run_json, write

from higgs_cli.errors import UsageError
from higgs_cli.plugins.script import LexiconEntry
from higgs_cli.project.planning.refs import LineRefs
from higgs_cli.project.reading.lexicon import Lexicon
from higgs_cli.project.reading.load import load_project


@pytest.fixture
def fake_model(fake_sessions):
    return fake_sessions.made


def refused(cli, *args):
    result = cli("project", *args)
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    return result.output


def test_a_line_that_does_not_exist_is_named_with_what_exists(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    out = refused(cli, "approve", show, "intro:9")
    assert "no line 'intro:9'; intro has lines 1-4" in out
    assert "did you mean 'walk'" in refused(cli, "approve", show, "wakl")
    assert "'intro' is a section" in refused(cli, "approve", show, "intro")
    assert "no section or line id 'intr'" in refused(cli, "approve", show, "intr:1")
    assert "must be a number" in refused(cli, "approve", show, "intro:x")
    assert "no section 'tlak'; did you mean 'talk'" in refused(cli, "approve", show, "--section", "tlak")
    assert "name the lines" in refused(cli, "approve", show)
    assert "no line 'talk:3'; talk has lines 1-2" in refused(cli, "render", show, "--line", "talk:3")
    assert not fake_model and not (show / "project.lock.yaml").exists() and not (show / "build").exists()


def test_approving_a_line_never_rendered_changes_nothing(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show, "--section", "talk")
    assert "have no rendered audio" in refused(cli, "approve", show, "talk:1", "intro:2")
    assert not (show / "project.lock.yaml").exists()


def test_a_take_that_does_not_exist(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    assert "no take 5 of talk:2; it has no takes yet" in refused(cli, "pick", show, "talk:2", "5")
    run_json(cli, "render", show)
    run_json(cli, "takes", show, "talk:2", "--count", "2")
    assert "no take 3 of talk:2; it has takes 1, 2" in refused(cli, "pick", show, "talk:2", "3")
    assert "--count must be from 1" in refused(cli, "takes", show, "talk:2", "--count", "0")
    assert not (show / "project.lock.yaml").exists()


def test_takes_of_a_line_whose_context_is_not_rendered(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    out = refused(cli, "takes", show, "walk", "--count", "2")
    assert "intro:3 hears intro:1, intro:2, which are not rendered yet" in out


def test_a_snapshot_that_does_not_exist(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    assert "no snapshots yet" in refused(cli, "restore", show, "20250101")
    first = run_json(cli, "render", show)["snapshot"]
    out = refused(cli, "restore", show, "19990101-000000")
    assert "is not a snapshot of this project" in out and first in out
    # a saved copy damaged by hand: refused, nothing written
    blob = next((show / ".higgs" / "snapshots" / "blobs").iterdir())
    blob.unlink()
    before = {p: p.read_bytes() for p in (show / "build").rglob("*") if p.is_file()}
    assert "the saved copy of" in refused(cli, "restore", show, first)
    assert {p: p.read_bytes() for p in (show / "build").rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(("lexicon", "expected"), [
    ("lexicon: [Nguyen, Win]", "project.yaml:7:10: lexicon must be a mapping"),
    ('lexicon:\n  "": Win', "project.yaml:8:3: lexicon: an entry has an empty word"),
    ('lexicon:\n  Nguyen: ""', "project.yaml:8:11: lexicon: 'Nguyen' is empty"),
    ("lexicon:\n  Nguyen: {sound: Win}", "unknown key 'sound'"),
    ("lexicon:\n  Nguyen: {say: Win, case: maybe}", "case must be true or false"),
    ("lexicon_file: missing.yaml", "lexicon_file 'missing.yaml' does not exist"),
])
def test_a_bad_lexicon_is_a_problem_with_its_position(cli, tmp_path, lexicon, expected):
    show = write(tmp_path / "show", lexicon=lexicon)
    assert expected in refused(cli, "validate", show)


def test_a_bad_lexicon_file_is_reported_at_its_own_position(cli, tmp_path):
    show = write(tmp_path / "show", lexicon="lexicon_file: words.yaml")
    (show / "words.yaml").write_text("Nguyen: Win\nSQL: [a, b]\n", encoding="utf-8")
    assert "words.yaml:2:6: lexicon_file words.yaml: 'SQL' must be text or a mapping" in refused(cli, "validate", show)


@pytest.mark.parametrize(("text", "expected"), [
    ("lines: [1, 2]\n", "project.lock.yaml:1:8: lines must be a mapping"),
    ("version: 7\nlines: {}\n", "project.lock.yaml:1:10: unsupported lock file version '7'"),
    ("version: 1\nlines:\n  talk:2: {text: zz, seed: -4}\n", "project.lock.yaml:3:18: line 'talk:2': text must be"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, seed: x}\n", "seed must be a whole number"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, colour: red}\n", "unknown key 'colour'"),
    ("version: 1\nlines: {talk:2: [\n", "project.lock.yaml:3:1: cannot be read"),
    # issue 31.6: numbers that are not numbers of ours, text that is not text, bombs
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, seed: " + "9" * 5000 + "}\n", "seed must be a whole number"),
    ("version: " + "1" * 5000 + "\nlines: {}\n", "unsupported lock file version"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, seed: 4294967296}\n", "seed 4294967296 is out of range"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, seed: 1" + "0" * 35 + "}\n", "seed must be a whole number"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, seed: .nan}\n", "seed must be a whole number"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, take: 1e400}\n", "take must be a whole number"),
    ("version: 1\nlines:\n  talk:2: {text: abcdef12, seed: \"\u00b2\"}\n", "seed must be a whole number"),
    ('version: 1\nlines:\n  "talk:\\ud800": {text: abcdef12, seed: 1}\n',
     "project.lock.yaml:3:3: a value holds a lone surrogate"),
    ("version: 1\nlines: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("version: 1\nlines: &a [*a]\n", "lines must be a mapping"),
])
def test_a_lock_file_edited_into_nonsense_is_refused_and_left_alone(cli, fake_model, tmp_path, text, expected):
    show = write(tmp_path / "show")
    (show / "project.lock.yaml").write_text(text, encoding="utf-8")
    for command in (["status", show], ["render", show], ["approve", show, "talk:1"], ["pick", show, "talk:1", "0"],
                    ["validate", show]):
        out = refused(cli, *command)
        assert expected in out and "not a valid lock file" in out
    assert (show / "project.lock.yaml").read_text(encoding="utf-8") == text
    assert not fake_model and not (show / "build").exists()


def test_a_lock_file_that_is_a_fifo_is_refused_at_once(cli, fake_model, tmp_path):
    """A FIFO planted as project.lock.yaml used to block every status and render forever."""
    import os

    from procs import quickly

    show = write(tmp_path / "show")
    os.mkfifo(show / "project.lock.yaml")
    out = quickly(lambda: refused(cli, "status", show), seconds=30)
    assert "not a regular file" in out and "not a valid lock file" in out and "delete project.lock.yaml" in out


def test_line_ids_are_unique_and_never_a_section_id(cli, tmp_path):
    show = write(tmp_path / "show")
    yaml = (show / "project.yaml").read_text()
    extra = "      - {id: walk, text: The end.}\n      - {id: talk, text: Hi.}"
    (show / "project.yaml").write_text(yaml.replace("      - The end of the morning came.", extra))
    out = refused(cli, "validate", show)
    assert "duplicate line id 'walk' (first at line 15)" in out
    assert "line id 'talk' is also a section's id" in out
    (show / "project.yaml").write_text(yaml.replace("id: walk", "id: 'no good'"))
    assert "id 'no good' is not a valid name" in refused(cli, "validate", show)


# -- the modules themselves -------------------------------------------------------------------


def test_lexicon_whole_words_case_and_chinese():
    lexicon = Lexicon({"Nguyen": LexiconEntry("Win"), "SQL": LexiconEntry("sequel", case=True),
                       "New York": LexiconEntry("Noo Yawk"), "New York City": LexiconEntry("the city"),
                       "重庆": LexiconEntry("崇庆")})
    assert lexicon.apply("nguyen and NGUYEN, not Nguyens") == "Win and Win, not Nguyens"
    assert lexicon.apply("SQL or sql") == "sequel or sql"
    assert lexicon.apply("New York City, New  York") == "the city, Noo Yawk"  # the longest entry first
    assert lexicon.apply("我在重庆市") == "我在崇庆市"  # Chinese: by substring
    assert lexicon.apply("[SPEAKER0] Nguyen") == "[SPEAKER0] Win"
    tags = Lexicon({"speaker0": LexiconEntry("x"), "Laughter": LexiconEntry("y"), "SE": LexiconEntry("z")})
    assert tags.apply("[SPEAKER0] <SE>[Laughter]</SE> laughter") == "[SPEAKER0] <SE>[Laughter]</SE> y"
    assert lexicon.unused(["Nguyen went to New York"]) == ["SQL", "New York City", "重庆"]


def test_refs_of_a_multi_chunk_clone_line(tmp_path):
    show = write(tmp_path / "show")
    yaml = (show / "project.yaml").read_text()
    long = " ".join(f"This is sentence number {n} of the walk." for n in range(1, 4))
    (show / "project.yaml").write_text(yaml.replace("    speaker: alice\n", "    speaker: alice\n"
                                                    "    max_chunk_chars: 40\n")
                                       .replace("Nguyen walked to the market.", long))
    project = load_project(show)
    from higgs_cli.project.planning.plan import ProjectPlanContext, plan_sections

    planned = plan_sections(project, ProjectPlanContext(project, codec_id="none"))
    refs = LineRefs(project, planned)
    assert refs.resolve("walk") == [2, 3, 4] and refs.resolve("walk:2") == [3]
    assert [refs.ref(i) for i in refs.resolve("walk")] == ["intro:3", "intro:4", "intro:5"]
    assert [refs.name(i) for i in range(2, 6)] == ["walk:1", "walk:2", "walk:3", "intro:6"]
    with pytest.raises(UsageError, match="line 'walk' has chunks 1-3"):
        refs.resolve("walk:4")
    with pytest.raises(UsageError, match="intro has lines 1-6"):
        refs.resolve("intro:7")


def test_takes_of_a_split_line_must_name_one_chunk(cli, tmp_path):
    show = write(tmp_path / "show")
    yaml = (show / "project.yaml").read_text()
    long = " ".join(f"This is sentence number {n} of the walk." for n in range(1, 4))
    (show / "project.yaml").write_text(yaml.replace("    speaker: alice\n", "    speaker: alice\n"
                                                    "    max_chunk_chars: 40\n")
                                       .replace("Nguyen walked to the market.", long))
    out = refused(cli, "takes", show, "walk")
    assert "'walk' names 3 lines (intro:3, intro:4, intro:5)" in out and "walk:1" in out
    assert json.loads(cli("--json", "project", "takes", show, "walk:2").stdout)["ref"] == "intro:4"


def test_a_planted_link_for_the_snapshots_is_refused(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    elsewhere = tmp_path / "yours"
    elsewhere.mkdir()
    (show / ".higgs").mkdir()
    (show / ".higgs" / "snapshots").symlink_to(elsewhere)
    assert "is a symbolic link" in refused(cli, "render", show)
    assert "is a symbolic link" in refused(cli, "clean", show, "--snapshots")
    assert elsewhere.is_dir() and not any(elsewhere.iterdir())


# -- issue 31.1: a tampered snapshot writes nowhere but inside the project ------------------------------

def _rendered_with_a_snapshot(cli, tmp_path):
    show = write(tmp_path / "show")
    data = run_json(cli, "render", show)
    snap = show / ".higgs" / "snapshots" / f"{data['snapshot']}.json"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious.txt").write_text("mine")
    return show, data["snapshot"], snap


@pytest.mark.parametrize("build_dir", ["ABSOLUTE", "../outside/new", "../../x", "build/../..", ".", ""])
def test_a_tampered_snapshot_cannot_make_restore_write_outside_the_project(cli, fake_model, tmp_path, build_dir):
    show, snapshot, snap = _rendered_with_a_snapshot(cli, tmp_path)
    data = json.loads(snap.read_text())
    data["build_dir"] = str(tmp_path / "outside" / "new") if build_dir == "ABSOLUTE" else build_dir
    snap.write_text(json.dumps(data))
    before = sorted(p.name for p in tmp_path.rglob("*") if "show" not in p.parts)
    out = refused(cli, "restore", show, snapshot)
    assert "is not inside" in out and "--output-dir DIR" in out
    assert sorted(p.name for p in tmp_path.rglob("*") if "show" not in p.parts) == before


def test_a_tampered_snapshot_file_name_cannot_leave_the_build_folder(cli, fake_model, tmp_path):
    show, snapshot, snap = _rendered_with_a_snapshot(cli, tmp_path)
    data = json.loads(snap.read_text())
    digest = next(iter(data["files"].values()))
    for rel in ("../../outside/precious.txt", str(tmp_path / "outside" / "precious.txt"), "stems/../../x.wav"):
        data["files"] = {rel: digest}
        snap.write_text(json.dumps(data))
        assert "is not inside" in refused(cli, "restore", show, snapshot)
    data["files"] = {"show.wav": "../../../../etc/passwd"}  # a digest is a name of a blob, never a path
    snap.write_text(json.dumps(data))
    assert "has no sha256" in refused(cli, "restore", show, snapshot)
    assert (tmp_path / "outside" / "precious.txt").read_text() == "mine"


def test_restore_never_writes_through_a_link_planted_in_build(cli, fake_model, tmp_path):
    """A link inside build/ (build/stems -> your folder) was followed to overwrite files outside it."""
    show, snapshot, _ = _rendered_with_a_snapshot(cli, tmp_path)
    victim = tmp_path / "outside"
    stems_dir = show / "build" / "stems"
    for stem in stems_dir.iterdir():
        (victim / stem.name).write_bytes(b"yours")
    shutil.rmtree(stems_dir)
    stems_dir.symlink_to(victim, target_is_directory=True)
    out = refused(cli, "restore", show, snapshot)
    assert "goes through the symbolic link" in out
    assert all(p.read_bytes() == b"yours" for p in victim.iterdir() if p.suffix == ".wav")
    assert (victim / "precious.txt").read_text() == "mine"


def test_a_render_to_a_folder_outside_the_project_is_restored_by_naming_it(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    out_dir = tmp_path / "exports"
    data = run_json(cli, "render", show, "--output-dir", out_dir)
    shutil.rmtree(out_dir)
    assert "--output-dir DIR" in refused(cli, "restore", show, data["snapshot"])
    restored = run_json(cli, "restore", show, data["snapshot"], "--output-dir", out_dir)
    assert (out_dir / "manifest.json").is_file() and restored["build_dir"] == str(out_dir)

