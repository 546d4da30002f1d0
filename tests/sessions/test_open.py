"""The front door (higgs_cli/sessions/open.py): every command that generates opens its session
through `open_session`, with the same --server/--no-server/--ray/--workers, checked before anything
is read; the environment variables are read in one place."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import FakeSession, write_voice

from higgs_cli.errors import UsageError
from higgs_cli.sessions import SessionSpec, describe_session, open_session
from higgs_cli.sessions.identity import ModelIdentity

PROJECT = """\
title: Front Door
speakers:
  alice: {audio: voices/alice.wav, transcript: "Hello, I am Alice."}
guards: {enabled: false}
script:
  - id: intro
    task: clone
    speaker: alice
    lines:
      - One fine morning.
"""


@pytest.fixture
def show(tmp_path):
    write_voice(tmp_path / "show" / "voices" / "alice.wav")
    (tmp_path / "show" / "project.yaml").write_text(PROJECT, encoding="utf-8")
    return tmp_path / "show"


@pytest.mark.parametrize(("fields", "message"), [
    ({"workers": 2}, "--workers needs --ray"),
    ({"ray": "auto", "workers": 0}, "--workers must be at least 1"),
    ({"ray": "auto", "server": "http://127.0.0.1:9"}, "--ray and --server do not go together"),
])
def test_a_spec_refuses_options_that_cannot_be_met(fields, message):
    with pytest.raises(UsageError, match=message):
        SessionSpec(**fields)


@pytest.mark.parametrize("command", [["say", "Hi."], ["say", "-i", "rows.txt", "-d", "out"],
                                     ["project", "render", "."], ["project", "takes", ".", "intro:1", "-n", "1"]])
def test_every_generating_command_takes_the_same_options_and_refuses_them_before_reading(cli, tmp_path, command,
                                                                                         fake_sessions):
    result = cli(*command, "--workers", "2")  # nothing exists at these paths: the options are refused first
    assert result.exit_code == 2 and "--workers needs --ray" in result.stderr, result.output
    result = cli(*command, "--ray", "auto", "--server", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "do not go together" in result.stderr, result.output
    assert fake_sessions.specs == []


def test_a_lazy_session_loads_only_when_used_and_says_so(fake_sessions):
    fake_sessions.known(ModelIdentity("fake/model", FakeSession.model_id, FakeSession.codec_id))
    session = open_session(SessionSpec(model="fake/model"), project_model="its/model", lazy=True)
    assert session.model_id == FakeSession.model_id and fake_sessions.made == []
    assert describe_session(session) == {"kind": "none"}
    session.decode(session.encode_audio(np.zeros(2400, dtype=np.float32)))
    assert [(s.model, s.project_model) for s in fake_sessions.specs] == [("fake/model", "its/model")]
    assert describe_session(session) == {"kind": "in-process", "model": FakeSession.name}


def test_takes_open_their_session_as_render_does(cli, show, fake_sessions):
    result = cli("--json", "project", "takes", show, "intro:1", "--count", "2", "--no-server", "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["session"] == {"kind": "in-process", "model": FakeSession.name} and len(data["takes"]) == 2
    [spec] = fake_sessions.specs
    assert (spec.no_server, spec.device, spec.server, spec.ray) == (True, "cpu", None, None)


def test_the_api_key_variable_is_read_for_serve_too(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HIGGS_API_KEY", "short")  # read, then refused as too short: before any model loads
    result = cli("serve", "--host", "0.0.0.0", "--model", tmp_path / "none")
    assert result.exit_code == 2 and "shorter than 8 characters" in result.stderr, result.output


def test_a_batch_says_which_session_it_used(cli, tmp_path, fake_sessions):
    rows = tmp_path / "rows.txt"
    rows.write_text("Hello there.\nGoodbye.\n", encoding="utf-8")
    fake_sessions.known(ModelIdentity(FakeSession.name, FakeSession.model_id, FakeSession.codec_id))
    first = json.loads(cli("--json", "say", "-i", rows, "-d", tmp_path / "out").stdout)
    again = json.loads(cli("--json", "say", "-i", rows, "-d", tmp_path / "out").stdout)
    assert (first["session"]["kind"], again["session"]["kind"]) == ("in-process", "none")


def test_a_model_named_by_the_environment_chooses_the_server_as_one_named_by_the_option(monkeypatch):
    """$HIGGS_MODEL is read once (engine.checkpoint.asked_model), by --model's default and by the
    choice of a local server alike: a server of another model is passed over."""
    import os

    from higgs_cli.sessions import discovery
    from higgs_cli.sessions.client import RemoteSession
    from higgs_cli.sessions.connect import choose_server

    discovery.advertise(discovery.Advert(url="http://127.0.0.1:9", pid=os.getpid(), model="x/served",
                                         model_id="abc", codec_id="def"))
    tried = []
    monkeypatch.setattr(RemoteSession, "connect", classmethod(lambda cls, url, **k: tried.append(url) or "remote"))
    monkeypatch.setenv("HIGGS_MODEL", "y/other")
    assert choose_server() is None and tried == []
    assert choose_server(model="x/served") == "remote" and tried == ["http://127.0.0.1:9"]
    monkeypatch.setenv("HIGGS_MODEL", "x/served")
    assert choose_server(project_model="y/other") == "remote"
