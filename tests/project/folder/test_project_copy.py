"""A copied or moved project is a fresh one: it never acts on its original's outputs (issue 16.1)."""

from __future__ import annotations

import json
import shutil

import pytest
from fakes import FakeSession


@pytest.fixture
def rendered(cli, fake_sessions, tmp_path):
    """`higgs project render` with a FakeSession; returns a function that renders a new project."""
    fake_sessions.each(lambda: FakeSession(is_random=True))

    def make(name: str, *args) -> object:
        show = tmp_path / name
        assert cli("project", "new", show, "--title", "Episode").exit_code == 0
        result = cli("project", "render", show, *args)
        assert result.exit_code == 0, result.output
        return show

    return make


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_cleaning_a_copy_leaves_the_originals_build(cli, rendered, tmp_path):
    ep1 = rendered("ep1")
    before = _files(ep1 / "build")
    assert "manifest.json" in before
    ep3 = tmp_path / "ep3"
    shutil.copytree(ep1, ep3)

    status = json.loads(cli("--json", "project", "status", ep3).stdout)
    assert status["build_dir"] == str(ep3 / "build")

    assert cli("project", "clean", ep3).exit_code == 0
    assert _files(ep1 / "build") == before
    assert not (ep3 / "build").exists()


def test_a_copy_does_not_clean_or_report_the_originals_output_dir(cli, rendered, tmp_path):
    out = tmp_path / "exports" / "ep1"
    ep1 = rendered("ep1", "--output-dir", out)
    before = _files(out)
    ep3 = tmp_path / "ep3"
    shutil.copytree(ep1, ep3)

    status = json.loads(cli("--json", "project", "status", ep3).stdout)
    assert status["build_dir"] == str(ep3 / "build")
    assert status["counts"]["rendered"] == 0

    assert cli("project", "clean", ep3).exit_code == 0
    assert _files(out) == before
    assert cli("project", "clean", ep1).exit_code == 0  # the original still knows its own output folder
    assert not (out / "manifest.json").exists()


def test_a_moved_project_works_as_a_fresh_one(cli, rendered, tmp_path):
    out = tmp_path / "exports" / "ep1"
    ep1 = rendered("ep1", "--output-dir", out)
    moved = tmp_path / "moved"
    ep1.rename(moved)
    assert cli("project", "clean", moved).exit_code == 0
    assert (out / "manifest.json").is_file()
    assert cli("project", "render", moved).exit_code == 0
    assert (moved / "build" / "manifest.json").is_file()
