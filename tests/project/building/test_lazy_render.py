"""A render whose lines are all cached does not load the model, and what needs no model is
checked before it loads (issue 16.7)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from fakes import FakeSession, make_project, section

from higgs_cli.errors import UsageError
from higgs_cli.project.building.render import render_project
from higgs_cli.sessions.identity import ModelIdentity, model_identity
from higgs_cli.sessions.lazy import LazySession

FAKE = ModelIdentity(name="fake/model", model_id=FakeSession.model_id, codec_id=FakeSession.codec_id)


def _never():
    raise AssertionError("the model was loaded")


def podcast(root, **output):
    return make_project(root, [
        section("intro", "clone", ("alice", "Welcome to the show.")),
        section("talk", "dialogue", ("alice", "How are you, Bob?"), ("bob", "Fine, thanks.")),
    ], **output)


def test_an_all_cached_render_never_calls_the_factory(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    first = json.loads((tmp_path / "build" / "manifest.json").read_text())
    changed = replace(project, title="New Title", defaults=replace(project.defaults, pause=1.0),
                      output=replace(project.output, loudness=-20.0))
    summary = render_project(changed, LazySession(_never, FAKE))
    assert (summary.generated, summary.cached, summary.model_loaded) == (0, 3, False)
    assert summary.outputs["master"] == tmp_path / "build" / "new-title.wav"
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert [m["key"] for m in manifest["lines"]] == [m["key"] for m in first["lines"]]
    assert manifest["duration"] > first["duration"]  # the longer pauses were applied


def test_the_factory_is_called_once_when_a_line_is_missing(tmp_path):
    project = podcast(tmp_path)
    render_project(project, FakeSession())
    loads = []

    def load():
        loads.append(FakeSession())
        return loads[-1]

    edited = replace(project, sections=project.sections[:1] + (section("talk", "dialogue", ("bob", "New line.")),))
    summary = render_project(edited, LazySession(load, FAKE))
    assert len(loads) == 1 and summary.generated == 1 and summary.model_loaded
    assert [r.text for r in loads[0].requests] == ["[SPEAKER1] New line."]
    assert loads[0].encode_calls == 0  # alice's recording was encoded by the first render


def test_a_bare_factory_is_accepted(tmp_path):
    summary = render_project(podcast(tmp_path), lambda: FakeSession())
    assert summary.generated == 3 and summary.model_id == FakeSession.model_id


def test_a_session_with_another_identity_is_refused(tmp_path):
    project = podcast(tmp_path)
    other = ModelIdentity(name="x", model_id="not-the-fake", codec_id=FakeSession.codec_id)
    with pytest.raises(Exception, match="changed on disk"):
        render_project(project, LazySession(FakeSession, other))


@pytest.mark.parametrize("bad", ["batch", "output_dir", "format"])
def test_checks_that_need_no_model_come_first(tmp_path, monkeypatch, bad):
    project = podcast(tmp_path / "p", format="mp3")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "precious.txt").write_text("mine")
    kwargs = {"batch_size": 0} if bad == "batch" else {"out_dir": taken} if bad == "output_dir" else {}
    if bad == "format":
        monkeypatch.setattr("higgs_cli.audio.io.supported_output_formats", lambda: ["wav", "flac"])
    message = {"batch": "batch-size", "output_dir": "not a higgs render", "format": "output.format mp3"}[bad]
    with pytest.raises(UsageError, match=message):
        render_project(project, LazySession(_never), **kwargs)


# -- through the CLI ---------------------------------------------------------------------


@pytest.fixture
def loads(fake_sessions, tiny_model):
    """The CLI's sessions are FakeSessions that carry the tiny checkpoint's fingerprints."""
    identity = model_identity(str(tiny_model))

    def make():
        session = FakeSession(is_random=True)
        session.model_id, session.codec_id = identity.model_id, identity.codec_id
        return session

    return fake_sessions.each(make).made


def test_cli_rerender_after_a_title_change_does_not_load_the_model(cli, loads, tiny_model, tmp_path):
    show = tmp_path / "show"
    assert cli("project", "new", show, "--title", "First").exit_code == 0
    assert cli("project", "render", show, "--model", tiny_model).exit_code == 0
    assert len(loads) == 1 and (show / "build" / "first.wav").is_file()

    yaml = show / "project.yaml"
    text = re.sub(r"(?m)^title:.*$", "title: Second", yaml.read_text(encoding="utf-8"))
    yaml.write_text(text, encoding="utf-8")
    result = cli("--json", "project", "render", show, "--model", tiny_model)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(loads) == 1 and summary["generated"] == 0 and summary["model_loaded"] is False
    assert summary["is_random"] and "noise" in summary["warning"]
    assert sorted(p.name for p in (show / "build").glob("*.wav")) == ["second.wav"]


def test_cli_refuses_what_needs_no_model_before_loading_it(cli, loads, tiny_model, tmp_path):
    show = tmp_path / "show"
    assert cli("project", "new", show).exit_code == 0
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "precious.txt").write_text("mine")
    assert cli("project", "render", show, "--model", tiny_model, "-b", "0").exit_code == 2
    result = cli("project", "render", show, "--model", tiny_model, "--output-dir", taken)
    assert result.exit_code == 2 and "not a higgs render" in result.output
    assert loads == []


@pytest.mark.slow
def test_model_identity_is_the_loaded_sessions(tiny_model, tiny_session, monkeypatch):
    from higgs_cli.engine.session import resolve_model

    identity = model_identity(str(tiny_model))
    assert (identity.model_id, identity.codec_id, identity.is_random) == (
        tiny_session.model_id, tiny_session.codec_id, tiny_session.is_random)
    assert model_identity("nobody/not-downloaded") is None  # offline: the loader explains
    seen = []

    def locate(name, revision=None):
        seen.append(name)
        raise UsageError(name)

    monkeypatch.setattr("higgs_cli.engine.checkpoint.locate", locate)
    cases = [(None, None, None), ("a/b", "c/d", "e/f"), (None, "c/d", "e/f"), (None, None, "e/f")]
    for cli_value, env, project in cases:
        if env:
            monkeypatch.setenv("HIGGS_MODEL", env)
        else:
            monkeypatch.delenv("HIGGS_MODEL", raising=False)
        seen.clear()
        assert model_identity(cli_value, project_model=project) is None
        assert seen == [resolve_model(cli_value, project)]


# -- LazySession is a Session without loading (item 7) --------------------------------------------


def test_isinstance_session_does_not_load_a_lazy_session_with_an_identity():
    from higgs_cli.engine.api import Session

    assert isinstance(LazySession(_never, FAKE), Session)


def test_isinstance_session_does_not_load_a_lazy_session_without_an_identity():
    from higgs_cli.engine.api import Session

    assert isinstance(LazySession(_never), Session)


def test_as_session_probes_no_attribute_of_a_real_session():
    from higgs_cli.sessions.lazy import as_session

    class Probed(FakeSession):
        def __getattribute__(self, name):
            if name == "generate":
                raise AssertionError("as_session probed the session")
            return super().__getattribute__(name)

    session = Probed()
    assert as_session(session) is session
    lazy = LazySession(_never, FAKE)
    assert as_session(lazy) is lazy
    wrapped = as_session(FakeSession)  # a class is a factory too
    assert isinstance(wrapped, LazySession) and not wrapped.loaded
