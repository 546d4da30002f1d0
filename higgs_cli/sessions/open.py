"""The one way a command gets a session: `open_session(...)`.

    spec = SessionSpec(model=model, server=server, ray=ray, workers=workers)  # refuses bad options now
    ...
    session = open_session(spec, project_model=project.model, lazy=True, notes=notes)

A `SessionSpec` is what the command was asked (model, revision, device,
compile, --server / --no-server, --ray / --workers, and the project's model);
it is checked when it is made, so a command refuses bad options before it
reads anything.
From it come three sessions, chosen in this order:
  1. `--ray ADDRESS`: a `RaySession` (the `ray` extra), its workers each loading the model;
  2. a running `higgs serve` (`connect.choose_server`: --server, $HIGGS_SERVER, or a live local
     one serving the model asked for; none with --no-server): a torch-free `RemoteSession`;
  3. else a `ModelSession` loaded in this process.
`lazy=True` wraps it in a `LazySession` keyed by `session_identity(spec)`, so a
render whose lines are all cached loads nothing. `describe_session` says which
one a command used, for its --json output.

Tests swap what is opened through one seam, `use_opener` (tests/conftest.py's
`fake_sessions` fixture): every command that generates goes through here.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from higgs_cli.engine.api import Session
from higgs_cli.errors import UsageError
from higgs_cli.sessions.identity import ModelIdentity, model_identity
from higgs_cli.sessions.lazy import LazySession


@dataclass(frozen=True)
class SessionSpec:
    """What a command was asked for its session (its options, and the project's `model:`)."""

    model: str | None = None
    revision: str | None = None
    device: str | None = None
    compile: bool = False
    project_model: str | None = None
    server: str | None = None
    no_server: bool = False
    ray: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse option combinations that cannot be met, before anything loads."""
        if self.workers is not None and self.ray is None:
            raise UsageError("--workers needs --ray", hint="pass --ray auto (or an address) to generate on a Ray "
                                                           "cluster")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, not {self.workers}")
        if self.ray is not None and self.server:
            raise UsageError("--ray and --server do not go together", hint="generate on a Ray cluster or on a "
                                                                            "running server, not both")


def _silent(text: str) -> None:
    """Notes nobody asked to see."""


@contextlib.contextmanager
def _no_spinner(message: str) -> Iterator[None]:
    yield


@dataclass(frozen=True)
class Notes:
    """Where opening a session reports: `note` (which session, how long it took), `warn` (options
    ignored), `busy(message)` (a context shown while the model loads). Silent by default; the CLI
    passes its own (cli/progress.py `SESSION_NOTES`)."""

    note: Callable[[str], None] = _silent
    warn: Callable[[str], None] = _silent
    busy: Callable[[str], AbstractContextManager] = _no_spinner


class Opener(Protocol):
    """What `open_session` asks: the identity that keys a spec's lines, and the session itself."""

    def identity(self, spec: SessionSpec) -> ModelIdentity | None: ...

    def load(self, spec: SessionSpec, notes: Notes) -> Session: ...


class RealOpener:
    """Ray, a running server, or a model loaded here (the module docstring's order)."""

    def identity(self, spec: SessionSpec) -> ModelIdentity | None:
        return session_identity(spec)

    def load(self, spec: SessionSpec, notes: Notes) -> Session:
        if spec.ray is not None:  # Ray workers each hold a model; this process plans, caches and writes
            from higgs_cli.sessions.ray_open import open_ray_session

            return open_ray_session(spec.ray, workers=spec.workers, model=spec.model, revision=spec.revision,
                                    device=spec.device, project_model=spec.project_model, compile=spec.compile,
                                    note=notes.note)
        remote = _choose_server(spec)
        if remote is not None:
            if spec.device or spec.compile:
                notes.warn("--device and --compile are the server's to choose (--device still places a project's "
                           "speech recognition, which runs here); ignored for " + remote.url)
            notes.note(f"using the higgs server at {remote.url} (model {remote.name} on {remote.device}); "
                       "--no-server loads the model here")
            return remote
        started = time.perf_counter()
        with notes.busy("loading the model..."):
            from higgs_cli.engine.session import ModelSession, resolve_model

            session = ModelSession.load(resolve_model(spec.model, spec.project_model), revision=spec.revision,
                                        device=spec.device, compile=spec.compile)
        info = session.info()
        notes.note(f"model {info.name} on {info.device} ({info.dtype}), loaded in "
                   f"{time.perf_counter() - started:.1f} s")
        if spec.compile:
            notes.note("--compile: each new decode step compiles on first use (on CPU about a minute the first "
                       "time; kept on disk for later runs)")
        return session


_opener: Opener = RealOpener()


def use_opener(opener: Opener | None) -> Opener:
    """Make `open_session` open sessions with `opener` (None: the real one); returns the one it replaces.
    The seam tests swap sessions through (tests/conftest.py `fake_sessions`)."""
    global _opener
    previous, _opener = _opener, opener or RealOpener()
    return previous


def open_session(spec: SessionSpec | None = None, *, project_model: str | None = None, lazy: bool = False,
                 notes: Notes | None = None) -> Session:
    """The session to generate with for `spec` (see the module docstring), with the project's
    `model:` when there is one; `lazy`: loaded on first use, keyed by `session_identity` now.

    Commands say that weights are random where their output is made: a lazy render may
    not load the model at all."""
    spec = spec or SessionSpec()
    if project_model is not None:
        spec = replace(spec, project_model=project_model)
    notes = notes or Notes()
    opener = _opener
    if not lazy:
        return opener.load(spec, notes)
    return LazySession(lambda: opener.load(spec, notes), opener.identity(spec))  # type: ignore[return-value]


def _choose_server(spec: SessionSpec):
    from higgs_cli.sessions.connect import choose_server  # http.client and ssl load only when asked

    return choose_server(server=spec.server, no_server=spec.no_server, model=spec.model, revision=spec.revision,
                         project_model=spec.project_model)


def session_identity(spec: SessionSpec) -> ModelIdentity | None:
    """What keys the lines a spec's session will generate: the model of the server it will use
    (none asked: whatever it serves), else the local checkpoint's fingerprints (a Ray session's
    workers load that checkpoint too); None when they cannot be read cheaply."""
    remote = None if spec.ray is not None else _choose_server(spec)
    if remote is None:
        return model_identity(spec.model, revision=spec.revision, project_model=spec.project_model)
    remote.close()
    return ModelIdentity(remote.name, remote.model_id, remote.codec_id, remote.is_random)


def describe_session(session: Any) -> dict:
    """Which session a command used, for its --json output: a server (its URL), Ray, this process,
    or none (a render whose lines were all cached loads no model)."""
    if isinstance(session, LazySession):
        if not session.loaded:
            return {"kind": "none"}
        session = session.session
    if _is_remote_or_ray(session):  # they say where they run
        return session.describe()
    return {"kind": "in-process", "model": session.name}


def _is_remote_or_ray(session: Any) -> bool:
    """Without importing either module: each is loaded only if a command used it."""
    for module, name in (("higgs_cli.sessions.client", "RemoteSession"), ("higgs_cli.sessions.ray_session",
                                                                           "RaySession")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(session, getattr(loaded, name)):
            return True
    return False
