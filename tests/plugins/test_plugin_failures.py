"""A broken third-party plugin is skipped and reported once; it never takes down the commands
that do not need it. HIGGS_DISABLE_PLUGINS skips plugins by entry-point name."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from higgs_cli.plugins.manager import get_plugin_manager, get_tasks, register_commands

BUILT_INS = {"clone", "dialogue", "bgm", "hum"}

BROKEN = {
    "import": "raise ImportError('needs a library that is not installed')\n",
    "syntax": "def oops(:\n",
    "unknown hook": ("from higgs_cli.plugins import hookimpl\n\n"
                     "@hookimpl\ndef register_exporters(register):\n    pass\n"),
    "tasks raise": ("from higgs_cli.plugins import hookimpl\n\n"
                    "@hookimpl\ndef register_tasks(register):\n    raise RuntimeError('task table is corrupt')\n"),
}


def install(tmp_path, monkeypatch, name: str, source: str) -> None:
    """An outside plugin installed as pip would: a module and a dist-info with its entry point."""
    site = tmp_path / f"site_{name}"
    site.mkdir()
    module = f"higgs_broken_{name}"
    (site / f"{module}.py").write_text(source)
    dist = site / f"higgs_broken_{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: higgs-broken-{name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[higgs.plugins]\n{name} = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.delitem(sys.modules, module, raising=False)


@pytest.mark.parametrize("how", sorted(BROKEN))
def test_a_broken_plugin_is_skipped_and_reported_once(cli, tmp_path, monkeypatch, fresh_manager, how):
    install(tmp_path, monkeypatch, "broken", BROKEN[how])
    first = cli("--help")
    assert first.exit_code == 0, first.output
    assert "say" in first.stdout and "Traceback" not in first.output
    assert first.stderr.count("plugin 'broken' (from higgs-broken-broken 1.0) is broken and was skipped") == 1
    assert "HIGGS_DISABLE_PLUGINS=broken" in first.stderr
    assert cli("--version").exit_code == 0
    later = cli("voice", "list")
    assert later.exit_code == 0 and "broken" not in later.stderr  # once per process, not per command
    assert set(get_tasks()) == BUILT_INS
    listed = json.loads(cli("--json", "plugins", "list").stdout)
    assert [b["name"] for b in listed["broken"]] == ["broken"]
    assert BUILT_INS <= {row["name"] for row in listed["plugins"]}


def test_disabled_plugins_are_not_loaded(cli, tmp_path, monkeypatch, fresh_manager):
    install(tmp_path, monkeypatch, "broken", BROKEN["import"])
    monkeypatch.setenv("HIGGS_DISABLE_PLUGINS", " broken , bgm ")
    result = cli("--json", "plugins", "list")
    assert result.exit_code == 0 and result.stderr == ""
    data = json.loads(result.stdout)
    assert data["broken"] == [] and sorted(data["disabled"]) == ["bgm", "broken"]
    assert set(get_tasks()) == BUILT_INS - {"bgm"}


def test_a_plugin_whose_commands_fail_is_dropped(tmp_path, monkeypatch, fresh_manager):
    import typer

    install(tmp_path, monkeypatch, "cmds", "from higgs_cli.plugins import hookimpl\n\n"
                                           "@hookimpl\ndef register_commands(cli):\n    raise KeyError('cli')\n")
    register_commands(typer.Typer())
    pm = get_plugin_manager()
    assert [f.name for f in pm.untold_failures()] == ["cmds"] and pm.get_plugin("cmds") is None
    assert pm.untold_failures() == []
