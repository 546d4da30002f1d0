"""Plugins: built-ins found through entry points, `higgs plugins list`, an outside
plugin installed as a distribution, and the docs covering every hookspec."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path

import pytest
from fakes import FakeSession

from higgs_cli.plugins import hookspecs
from higgs_cli.plugins.manager import get_tasks, plugin_rows
from higgs_cli.plugins.task import Task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on older Pythons
    import tomli as tomllib

BUILT_INS = {"clone", "dialogue", "bgm", "hum"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"



def docs_example(name: str) -> str:
    """The code block that follows "`NAME`:" in docs/plugins.md: the docs' example is what we test."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"`{re.escape(name)}`:\n\n```\w*\n(.*?)```", text, re.S)
    assert match, f"docs/plugins.md has no code block for {name}"
    return match.group(1)


PROJECT = """\
title: Whisper test
speakers:
  narrator:
    description: calm voice
script:
  - id: hello
    task: whisper
    speaker: narrator
    gap: 0.5
    lines:
      - Hello there.
      - Is anybody home?
"""


@pytest.fixture
def whisper_plugin(tmp_path, monkeypatch, fresh_manager):
    """Install the docs' example plugin the way pip would: its module, and a dist-info
    whose entry_points.txt is the docs' pyproject entry point, on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "higgs_whisper.py").write_text(docs_example("higgs_whisper.py"))
    pyproject = tomllib.loads(docs_example("pyproject.toml"))
    entry_points = pyproject["project"]["entry-points"]["higgs.plugins"]
    dist = site / "higgs_whisper-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pyproject['project']['name']}\n"
                                   f"Version: {pyproject['project']['version']}\n")
    (dist / "entry_points.txt").write_text("[higgs.plugins]\n" + "".join(f"{k} = {v}\n"
                                                                         for k, v in entry_points.items()))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield
    sys.modules.pop("higgs_whisper", None)


def test_built_in_tasks_load_through_entry_points(fresh_manager):
    tasks = get_tasks()
    assert BUILT_INS <= set(tasks)
    rows = {row["name"]: row for row in plugin_rows()}
    for name in BUILT_INS:
        assert rows[name]["module"] == f"higgs_plugins.{name}"
        assert rows[name]["tasks"] == [name]
        assert rows[name]["distribution"].startswith("higgs-cli ")
        task = tasks[name]
        assert isinstance(task, Task)
        assert task.description and all(isinstance(v, str) and v for v in task.fields.values())


def test_plugins_list_command(cli, fresh_manager):
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.output
    for name in BUILT_INS:
        assert name in result.stdout
    assert "max_chunk_chars" in result.stdout and "melody" in result.stdout

    result = cli("--json", "plugins", "list")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert BUILT_INS <= {row["name"] for row in data["plugins"]}
    bgm = next(t for t in data["tasks"] if t["name"] == "bgm")
    assert bgm["plugin"] == "bgm" and "music" in bgm["fields"]


def test_an_outside_plugin_adds_a_task_that_projects_can_render(cli, whisper_plugin, tmp_path, fake_sessions):
    assert "whisper" in get_tasks()
    listing = json.loads(cli("--json", "plugins", "list").stdout)
    row = next(row for row in listing["plugins"] if row["name"] == "whisper")
    assert row["distribution"] == "higgs-whisper 0.1.0" and row["tasks"] == ["whisper"]

    project = tmp_path / "show"
    project.mkdir()
    (project / "project.yaml").write_text(PROJECT)
    assert cli("project", "validate", project).exit_code == 0

    session = fake_sessions.always(FakeSession())
    result = cli("--json", "project", "render", project)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lines"] == 4
    manifest = json.loads((project / "build" / "manifest.json").read_text())
    lines = manifest["lines"]
    assert [(m["text"], m["extra"]["whisper"]) for m in lines] == [
        ("Hello there.", False), ("Hello there.", True), ("Is anybody home?", False), ("Is anybody home?", True)]
    assert lines[1]["start"] - lines[0]["end"] == pytest.approx(0.5, abs=0.02)
    # the whisper heard its line: a context turn made of the first line's text and generated codes
    whisper, = [r for r in session.requests if r.scene and "whispers" in r.scene and r.text == "Hello there."]
    assert [t.text for t in whisper.history] == ["Hello there."]


def test_an_outside_plugin_checks_its_own_fields(cli, whisper_plugin, tmp_path):
    project = tmp_path / "bad"
    project.mkdir()
    (project / "project.yaml").write_text(PROJECT.replace("gap: 0.5", "gap: -1"))
    result = cli("project", "validate", project)
    assert result.exit_code == 2
    assert "project.yaml:9:10: gap must be a number >= 0" in result.output


def test_every_hookspec_is_documented():
    """Like datasette: a hook nobody documented is a hook nobody can use."""
    text = DOCS.read_text(encoding="utf-8")
    names = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(fn, "higgs_spec")]
    assert names, "no hookspecs found"
    missing = [name for name in names if f"## {name}(" not in text]
    assert not missing, f"docs/plugins.md has no '## NAME(...)' section for: {', '.join(missing)}"


def test_the_plugin_contract_sits_below_the_project_layer():
    """No module of the plugin system or of a built-in plugin imports higgs_cli.project (not even for types):
    plugins see the project through higgs_cli.plugins alone."""
    import ast

    repo = Path(__file__).resolve().parents[2]
    sources = [*repo.joinpath("higgs_cli", "plugins").glob("*.py"), *repo.joinpath("plugins").glob("*.py")]
    assert len(sources) >= 8
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.relative_to(repo)}:{node.lineno}: {m}" for m in modules
                      if m == "higgs_cli.project" or m.startswith("higgs_cli.project.")]
    assert found == []


def test_higgs_cli_plugins_exports_the_whole_plugin_author_api():
    import higgs_cli.plugins as api

    needed = {"hookimpl", "Task", "PlannedLine", "PlanContext", "Problem", "Project", "Section", "Line", "Speaker",
              "Location", "SamplingDefaults", "OutputSettings", "problem", "speaker_of", "check_speakers",
              "check_int", "check_text", "field", "request", "solo_scene", "join_scene", "speaker_numbers",
              "plan_wrapped_lines", "MAX_CONTEXT", "has_voice"}
    assert needed <= set(api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)
    assert str(api.Problem(api.Location("p.yaml", 3, 5), "bad")) == "p.yaml:3:5: bad"
    assert str(api.Problem(None, "bad", subject="section 's'")) == "section 's': bad"
