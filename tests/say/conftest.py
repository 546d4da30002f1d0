"""The `higgs say` tests' fixtures."""

from __future__ import annotations

import pytest
from fakes import FakeSession


@pytest.fixture
def session(fake_sessions) -> FakeSession:
    """A FakeSession in place of the model (no --model: its identity comes from the session)."""
    return fake_sessions.always(FakeSession(is_random=True))
