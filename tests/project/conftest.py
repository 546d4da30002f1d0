"""The project tests' fixtures (every room of tests/project/)."""

from __future__ import annotations

import pytest
from delivery_helpers import FAKE
from fakes import FakeSession


@pytest.fixture
def fake_model(fake_sessions) -> list[FakeSession]:
    """`project render` gets a FakeSession (no torch, no checkpoint); the sessions it made."""
    return fake_sessions.known(FAKE).made
