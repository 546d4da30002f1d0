"""What `project render --ray` (and `say --input-file --ray`) calls: a RaySession for the CLI's options."""

from __future__ import annotations

import time

from higgs_cli.distributed.cluster import import_ray


def open_ray_session(address: str, *, workers: int | None = None, model: str | None = None,
                     revision: str | None = None, device: str | None = None, project_model: str | None = None,
                     compile: bool = False, note=None):
    """Join the cluster at `address` and start the workers, each loading the model.

    `model` is resolved as a local render resolves it (--model, $HIGGS_MODEL, the project's
    `model:`, the default Hub id); a path must be one every node can read. `note(text)`
    receives one line saying where the workers run."""
    import_ray()  # a missing extra is named before anything else is tried
    from higgs_cli.distributed.ray_session import RaySession
    from higgs_cli.engine.checkpoint import resolve_model

    started = time.perf_counter()
    session = RaySession(resolve_model(model, project_model), address=address, workers=workers, revision=revision,
                         device=device, compile=compile)
    if note is not None:
        hosts = sorted({w["host"] for w in session.workers})
        note(f"model {session.name} on {len(session.workers)} Ray worker(s) ({session.placement.device}) on "
             f"{len(hosts)} node(s), ready in {time.perf_counter() - started:.1f} s")
    return session


def check_ray_options(address: str | None, workers: int | None) -> None:
    """Refuse --workers without --ray, and a worker count below one, before anything loads."""
    from higgs_cli.errors import UsageError

    if workers is not None and address is None:
        raise UsageError("--workers needs --ray", hint="pass --ray auto (or an address) to render on a Ray cluster")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
