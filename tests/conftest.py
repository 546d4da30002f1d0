"""Shared fixtures: run the real CLI in-process; make tiny random checkpoints once per session. And the
marks every folder shares: `slow` on each test that uses the tiny model, and a skip (with the install
command) for tests that need a program this machine lacks."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

# Tests that use these are slow: every model fixture (tiny_session, tiny_fp32_session, a module's
# transformers model, the server tests' sessions) builds on tiny_model; s3_endpoint starts moto's S3 server.
SLOW_FIXTURES = frozenset({"tiny_model", "s3_endpoint"})
# marker -> (the programs it needs, how to install them on Debian)
NEEDS = {"needs_ffmpeg": (("ffmpeg", "ffprobe"), "apt-get install ffmpeg"),
         "needs_chromium": (("chromium",), "apt-get install chromium chromium-driver")}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects, so `-m "not slow"` sees the marks added here
def pytest_collection_modifyitems(config, items):
    missing = {mark: [p for p in programs if shutil.which(p) is None] for mark, (programs, _) in NEEDS.items()}
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
        for mark, (_, install) in NEEDS.items():
            if missing[mark] and item.get_closest_marker(mark) is not None:
                item.add_marker(pytest.mark.skip(reason=f"needs {' and '.join(missing[mark])}: {install}"))


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own HIGGS_HOME and no network."""
    home = tmp_path_factory.mktemp("higgs_home")
    monkeypatch.setenv("HIGGS_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HIGGS_MODEL", raising=False)
    # a developer's own server settings never reach a test (tests start the servers they use)
    monkeypatch.delenv("HIGGS_SERVER", raising=False)
    monkeypatch.delenv("HIGGS_API_KEY", raising=False)
    monkeypatch.delenv("HIGGS_CACHE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    yield home


@pytest.fixture
def cli(capsys):
    """Run `higgs ARGS...` in-process and return its exit code and output."""
    from higgs_cli.cli.app import main

    def run(*args: str | os.PathLike) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random-init Higgs Audio V2 checkpoint in the real on-disk layout."""
    from higgs_cli.engine.checkpoint import init_random

    path = tmp_path_factory.mktemp("models") / "tiny"
    init_random(path, size="tiny", seed=0)
    return path


@pytest.fixture(scope="session")
def tiny_session(tiny_model):
    """One loaded ModelSession on the tiny checkpoint, shared by the whole test run."""
    from higgs_cli.engine.session import ModelSession

    return ModelSession.load(str(tiny_model), device="cpu")


@pytest.fixture(scope="session")
def tiny_fp32_session(tiny_model, tiny_session):
    """The tiny checkpoint in fp32, the dtype the transformers references run in; the default
    session where that is already fp32 (a CPU without native bf16)."""
    import torch

    from higgs_cli.engine.session import ModelSession

    if tiny_session.dtype == torch.float32:
        return tiny_session
    return ModelSession.load(str(tiny_model), device="cpu", dtype="fp32")


class FakeOpener:
    """What `sessions.open_session` opens while the `fake_sessions` fixture is on (its one seam,
    `sessions.use_opener`): every command that generates gets `make(spec)`, a FakeSession by default.

    `made` and `specs` list what was loaded and what the command asked for (a lazy render
    that loads nothing leaves both empty). The identity that keys lines is the real one
    (the local checkpoint's, or a server's) unless `known(identity)` fixes it (None: unknown
    until a session loads)."""

    _REAL = object()

    def __init__(self) -> None:
        from fakes import FakeSession

        self.made: list = []
        self.specs: list = []
        self.make = lambda spec: FakeSession()
        self._identity = self._REAL

    def always(self, session):
        """Every load gives `session` (one object); returns it."""
        self.make = lambda spec: session
        return session

    def each(self, factory) -> FakeOpener:
        """Every load gives a new `factory()` (e.g. `lambda: FakeSession(is_random=True)`)."""
        self.make = lambda spec: factory()
        return self

    def known(self, identity) -> FakeOpener:
        """Key lines with `identity` (a ModelIdentity, or None) instead of reading a checkpoint."""
        self._identity = identity
        return self

    def identity(self, spec):
        if self._identity is self._REAL:
            from higgs_cli.sessions.open import session_identity

            return session_identity(spec)
        return self._identity

    def load(self, spec, notes):
        self.specs.append(spec)
        self.made.append(self.make(spec))
        return self.made[-1]


@pytest.fixture
def fake_sessions():
    """Commands get FakeSessions instead of loading a model (see FakeOpener); restored afterwards."""
    from higgs_cli.sessions import use_opener

    opener = FakeOpener()
    previous = use_opener(opener)
    yield opener
    use_opener(previous)
