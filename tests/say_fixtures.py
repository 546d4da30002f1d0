"""Shared by the `higgs say` tests (test_say_batch.py, test_cli_say_io.py): stdin fed from bytes (the
`session` fixture, a FakeSession in place of the model, is in tests/say/conftest.py)."""

from __future__ import annotations

import io
import sys

import pytest


def feed_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """sys.stdin reads `data` (decoded as UTF-8 on read, so bad bytes fail where the CLI reads them)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
