"""`higgs project studio PATH` as a command: it prints its URL (JSON with --json) at once, serves it until
Ctrl-C, and refuses a bad port or a folder without a project before it starts anything."""

from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from procs import start, stop

ROOT = Path(__file__).resolve().parents[2]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow  # starts a process
def test_the_command_prints_its_url_serves_it_and_stops_on_ctrl_c(tmp_path):
    shutil.copytree(ROOT / "projects" / "jingle", tmp_path / "jingle")
    proc = start(["--json", "project", "studio", tmp_path / "jingle", "--no-open"])
    text = ""
    while True:  # one JSON document, printed before serving
        line = proc.stdout.readline()
        assert line, f"the studio ended first: {proc.stderr.read()}"
        text += line
        if line.startswith("}"):
            break
    shown = json.loads(text)
    assert shown["url"].startswith(f"http://127.0.0.1:{shown['port']}/?token=")
    assert Path(shown["project"]) == tmp_path / "jingle"
    assert _status(shown["url"]) == 200
    assert _status(shown["url"].split("?")[0]) == 403  # the token is the key
    code, _, stderr = stop(proc, signal.SIGINT)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_a_bad_port_or_a_folder_without_a_project_is_a_usage_error(cli, tmp_path):
    shutil.copytree(ROOT / "projects" / "jingle", tmp_path / "jingle")
    result = cli("project", "studio", tmp_path / "jingle", "--port", "70000", "--no-open")
    assert result.exit_code == 2 and "not a port" in result.output
    result = cli("project", "studio", tmp_path, "--no-open")
    assert result.exit_code == 2 and "no project.yaml" in result.output
