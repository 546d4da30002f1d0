"""A `RaySession` for a command's options (`--ray ADDRESS --workers N`): what `open_session` calls."""

from __future__ import annotations

import time
from collections.abc import Callable

from higgs_cli.distributed.cluster import import_ray


def open_ray_session(address: str, *, workers: int | None = None, model: str | None = None,
                     revision: str | None = None, device: str | None = None, project_model: str | None = None,
                     compile: bool = False, note: Callable[[str], None] | None = None):
    """Join the cluster at `address` and start the workers, each loading the model.

    `model` is resolved as a local render resolves it (--model, $HIGGS_MODEL, the project's
    `model:`, the default Hub id); a path must be one every node can read. `note(text)`
    receives one line saying where the workers run."""
    import_ray()  # a missing extra is named before anything else is tried
    from higgs_cli.engine.checkpoint import resolve_model
    from higgs_cli.sessions.ray_session import RaySession

    started = time.perf_counter()
    session = RaySession(resolve_model(model, project_model), address=address, workers=workers, revision=revision,
                         device=device, compile=compile)
    if note is not None:
        hosts = sorted({w["host"] for w in session.workers})
        note(f"model {session.name} on {len(session.workers)} Ray worker(s) ({session.placement.device}) on "
             f"{len(hosts)} node(s), ready in {time.perf_counter() - started:.1f} s")
    return session
