"""The environment variables of serving and connecting: each name spelled here, each read here.

`higgs serve` takes its API key from `api_key()` when --api-key is not given;
a client (`client.RemoteSession`) sends the same variable's key; `--server`
falls back to `server_url()`. Options' help texts name the variables through
these constants.
"""

from __future__ import annotations

import os

SERVER_ENV = "HIGGS_SERVER"
KEY_ENV = "HIGGS_API_KEY"


def server_url() -> str | None:
    """The server a command uses when --server is not given ($HIGGS_SERVER; empty means none)."""
    return os.environ.get(SERVER_ENV) or None


def api_key() -> str | None:
    """The API key of $HIGGS_API_KEY: a server requires it, a client sends it (empty means none)."""
    return os.environ.get(KEY_ENV) or None
