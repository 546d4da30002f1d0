"""The `higgs say` tests' fixtures."""

from __future__ import annotations

import pytest
from fakes import FakeSession
from say_fixtures import use_session


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> FakeSession:
    """A FakeSession in place of the model (no --model: its identity comes from the session)."""
    return use_session(monkeypatch, FakeSession(is_random=True))
