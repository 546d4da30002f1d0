"""Which running server a command uses: --server URL, $HIGGS_SERVER, or a live local one serving the
model asked for (none asked: whatever it serves); --no-server uses none. Torch-free."""

from __future__ import annotations

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.sessions.discovery import Advert, live_servers
from higgs_cli.sessions.env import server_url


def _serves(name: str, model_id: str, asked: str, revision: str | None) -> bool:
    """Whether a server's model is the checkpoint `asked` names (same name, or the same files)."""
    from higgs_cli.engine import checkpoint

    resolved = checkpoint.resolve_model(asked)
    if revision is None and resolved == name:
        return True
    try:
        files = checkpoint.locate(resolved, revision=revision)
        return checkpoint.fingerprint_folder(files.model_dir) == model_id
    except (HiggsError, OSError):
        return False


def choose_server(*, server: str | None = None, no_server: bool = False, model: str | None = None,
                  revision: str | None = None, project_model: str | None = None):
    """A connected `client.RemoteSession`, or None to load the model in this process."""
    if no_server:
        return None
    from higgs_cli.engine.checkpoint import asked_model
    from higgs_cli.sessions.client import RemoteSession

    asked = asked_model(model, project_model)
    url = server or server_url()
    if url:
        remote = RemoteSession.connect(url)
        if asked and not _serves(remote.name, remote.model_id, asked, revision):
            remote.close()
            raise UsageError(f"the server at {url} serves {remote.name}, not {asked}",
                             hint="start a server with that --model, drop --model to use the server's, or pass "
                                  "--no-server to load it here")
        return remote
    for advert in live_servers():
        if asked and not _advert_serves(advert, asked, revision):
            continue
        try:
            return RemoteSession.connect(advert.url)
        except HiggsError:  # stopping, or it needs a key we lack: load the model here instead
            continue
    return None


def _advert_serves(advert: Advert, asked: str, revision: str | None) -> bool:
    return _serves(advert.model, advert.model_id, asked, revision)
