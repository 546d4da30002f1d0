"""The project tests' fixtures (every room of tests/project/)."""

from __future__ import annotations

import pytest
from delivery_helpers import FAKE
from fakes import FakeSession


@pytest.fixture
def fake_model(monkeypatch):
    """`project render` gets a FakeSession (no torch, no checkpoint); the sessions it made."""
    made: list[FakeSession] = []

    def load(*args, **kwargs):
        made.append(FakeSession())
        return made[-1]

    monkeypatch.setattr("higgs_cli.cli.project.load_session", load)
    monkeypatch.setattr("higgs_cli.cli.project.model_identity", lambda *a, **k: FAKE)
    monkeypatch.setattr("higgs_cli.cli.project.session_identity", lambda *a, **k: FAKE)
    return made
