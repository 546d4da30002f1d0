"""The plugin tests' fixtures: a plugin manager found afresh for the test, and forgotten after it."""

from __future__ import annotations

import pytest

from higgs_cli.plugins.manager import get_plugin_manager


@pytest.fixture
def fresh_manager():
    get_plugin_manager.cache_clear()
    yield
    get_plugin_manager.cache_clear()
