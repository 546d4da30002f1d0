"""The engine's Session protocol: ModelSession, the test doubles and LazySession all satisfy it,
member by member and signature by signature; the protocol module imports no torch."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from fakes import FakeSession

from higgs_cli.engine.api import Session

METHODS = ["generate", "stream", "encode_audio", "decode"]
ATTRIBUTES = ["name", "model_id", "codec_id", "is_random"]


def _parameters(function) -> list[tuple[str, inspect._ParameterKind]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values() if p.name != "self"]


def _implementations():
    from fake_cli import ScriptedSession

    from higgs_cli.engine.session import ModelSession
    from higgs_cli.sessions.client import RemoteSession
    from higgs_cli.sessions.lazy import LazySession

    return [ModelSession, FakeSession, ScriptedSession, LazySession, RemoteSession]


def test_protocol_members_are_what_callers_use():
    assert set(METHODS) | set(ATTRIBUTES) == {n for n in dir(Session) if not n.startswith("_")} | set(
        Session.__annotations__)


@pytest.mark.parametrize("method", METHODS)
def test_every_implementation_has_each_method_with_the_protocols_signature(method):
    expected = _parameters(getattr(Session, method))
    for cls in _implementations():
        assert _parameters(getattr(cls, method)) == expected, f"{cls.__name__}.{method}"


def test_instances_satisfy_the_runtime_check(tiny_session):
    assert isinstance(FakeSession(), Session)
    assert isinstance(tiny_session, Session)
    assert not isinstance(object(), Session)


@pytest.mark.slow
def test_protocol_imports_no_torch():
    code = "import sys, higgs_cli.engine.api\nassert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
