"""--json and -q on every command, before the noun or after the command; JSON errors for usage
mistakes (click's too); no notes in --json mode; floats rounded."""

from __future__ import annotations

import json

import pytest
from fakes import FakeSession


@pytest.fixture
def show(cli, tmp_path):
    folder = tmp_path / "show"
    assert cli("project", "new", folder).exit_code == 0
    return folder


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", [("voice", "list"), ("project", "validate", "{show}"),
                                     ("project", "status", "{show}"), ("plugins", "list"), ("model", "info")])
def test_json_works_on_every_command_in_either_place(cli, show, command, where):
    args = [str(show) if a == "{show}" else a for a in command]
    result = cli("--json", *args) if where == "before" else cli(*args, "--json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), dict)


def test_quiet_on_a_command(cli, show):
    loud, quiet = cli("project", "validate", show), cli("project", "validate", show, "-q")
    assert loud.exit_code == quiet.exit_code == 0 and quiet.stdout == loud.stdout  # results still print


@pytest.mark.parametrize("args", [("--json", "say", "hi", "--bogus"), ("voice", "list", "--bogus", "--json"),
                                  ("--json", "nosuchnoun"), ("say", "hi", "--temperature", "hot", "--json"),
                                  ("--json", "voice"),
                                  ("--json", "project", "render", "--batch-size", "0")])
def test_usage_errors_in_json_mode_are_the_documented_json(cli, args):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)
    assert set(error) == {"error", "where", "hint", "exit_code"} and error["exit_code"] == 2
    assert error["error"] and "Usage:" not in result.output


def test_json_after_a_text_that_reads_json_is_not_json(cli):
    """A TEXT after `--` that reads --json does not switch a usage error to JSON."""
    result = cli("say", "--bogus", "--", "--json")
    assert result.exit_code == 2 and "No such option" in result.stderr and result.stdout == ""


def test_no_notes_in_json_mode(cli, tmp_path, fake_sessions):
    fake_sessions.always(FakeSession(is_random=True))
    result = cli("say", "Hello.", "-o", tmp_path / "x.wav", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["random_weights"] is True and "noise" in data["warning"]
    assert result.stderr == ""
    for key in ("seconds", "generation_seconds"):
        assert round(data[key], 3) == data[key]


def test_floats_are_rounded_sensibly():
    from higgs_cli.cli.output import json_ready

    assert json_ready({"a": 1.23456789, "b": [0.000123456, float("nan")], "c": 2, "d": -16.00049}) == {
        "a": 1.235, "b": [0.000123, None], "c": 2, "d": -16.0}


def test_json_keeps_stderr_empty_and_carries_warnings_in_the_result(cli, show, fake_sessions):
    """`project render --json`: a warning (lines cut at max_seconds) is a field, not a line on stderr."""
    fake_sessions.always(FakeSession())
    text = (show / "project.yaml").read_text(encoding="utf-8")
    (show / "project.yaml").write_text(text.replace("max_seconds: 30 ", "max_seconds: 0.4"), encoding="utf-8")
    result = cli("project", "render", show, "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    warnings = json.loads(result.stdout)["warnings"]
    assert any("stopped at defaults.max_seconds" in w for w in warnings)
    loud = cli("project", "render", show, "--force")  # without --json the same warning is on stderr
    assert loud.exit_code == 0 and "warning:" in loud.stderr and "stopped at defaults.max_seconds" in loud.stderr
