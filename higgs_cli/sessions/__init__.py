"""Sessions: the one front door to a model, wherever it runs.

`open.open_session(...)` turns a command's options (model, revision, device,
compile, the project's model, --server / --no-server, --ray / --workers, lazy)
into an `engine.api.Session`: a `ModelSession` loaded here, a `client.RemoteSession`
on a running `higgs serve` (`connect` chooses it, `discovery` finds local ones,
`transport` and `wire` carry the requests), or a `ray_session.RaySession`
(`ray_open`); `lazy.LazySession` defers the load, keyed by `identity`.
`env` owns the environment variables of serving and connecting.

Torch-free: the engine's torch-backed modules load only inside the functions
that load a model here. See docs/architecture.md.
"""

from higgs_cli.sessions.open import (
    Notes,
    SessionSpec,
    describe_session,
    open_session,
    session_identity,
    use_opener,
)

__all__ = ["Notes", "SessionSpec", "describe_session", "open_session", "session_identity", "use_opener"]
