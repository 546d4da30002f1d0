"""Shared by the `higgs say` tests (test_say_batch.py, test_cli_say_io.py): a FakeSession in place of
the model, and stdin fed from bytes."""

from __future__ import annotations

import io
import sys

import pytest
from fakes import FakeSession


@pytest.fixture
def session(fake_sessions) -> FakeSession:
    """A FakeSession in place of the model (no --model: its identity comes from the session)."""
    return fake_sessions.always(FakeSession(is_random=True))


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """sys.stdin reads `data` (decoded as UTF-8 on read, so bad bytes fail where the CLI reads them)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
