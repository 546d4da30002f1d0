"""Serving one loaded session on uvicorn until SIGTERM or Ctrl-C, then draining.

    serve(lambda: ModelSession.load(...), ServeOptions(host="127.0.0.1", port=8000), on_ready=print)

The session is loaded on the scheduler's thread, which then does all of its
torch work (see engine/scheduler.py for why).

Security checks come first (`check_bind`): a non-loopback address needs an API
key. Once listening, the server advertises itself for local `higgs` commands
(discovery.py) and withdraws the entry on the way out. On a signal it stops
accepting, answers new requests 503, lets running ones finish for up to
`drain_seconds`, cancels what is left, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from higgs_cli.errors import UsageError
from higgs_cli.server.limits import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SLOTS, Limits


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_batch: int = DEFAULT_SLOTS
    api_key: str | None = None
    cors_origins: Sequence[str] = ()
    limits: Limits = field(default_factory=Limits)
    drain_seconds: float = 30.0
    advertise: bool = True


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(options: ServeOptions) -> None:
    """Refuse, before any model loads, to listen beyond this machine without an API key, or on a bad port."""
    if not 0 <= options.port <= 65535:
        raise UsageError(f"--port {options.port} is not a port", hint="use 1-65535 (0 picks a free one)")
    if not is_loopback(options.host) and not options.api_key:
        raise UsageError(f"refusing to listen on {options.host} without an API key: anyone who can reach it "
                         "could use the model", hint="pass --api-key KEY (or set $HIGGS_API_KEY), or keep the "
                                                     "default --host 127.0.0.1")
    if options.api_key is not None and len(options.api_key) < 8:
        raise UsageError("the API key is shorter than 8 characters", hint="use a long random key, e.g. "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    if options.max_batch < 1:
        raise UsageError("--max-batch must be at least 1")


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(load: Callable[[], object], options: ServeOptions, *,
          on_ready: Callable[[str, object], None] | None = None) -> None:
    """Load a session (`load()`, on the model's thread) and serve it until a signal; returns after
    draining (the caller decides the exit code). `on_ready(url, session)` once it listens."""
    import uvicorn

    from higgs_cli.engine.scheduler import Scheduler
    from higgs_cli.server.app import build_app
    from higgs_cli.server.common import ServerState
    from higgs_cli.sessions import discovery
    from higgs_cli.voices.library import VoiceLibrary

    check_bind(options)
    scheduler = Scheduler.open(load, slots=options.max_batch, max_queue=options.limits.max_queue)
    session = scheduler.session
    state = ServerState(scheduler, limits=options.limits, api_key=options.api_key, library=VoiceLibrary())
    app = build_app(state, cors_origins=options.cors_origins)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:  # a signal: stop taking generations at once
            state.draining = True
            super().handle_exit(sig, frame)  # a second one forces the exit

        @contextlib.contextmanager
        def capture_signals(self):
            """SIGINT/SIGTERM drain the server; unlike uvicorn's own, not raised again afterwards, so
            the caller's clean-up runs and a drained server exits 0."""
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, host=options.host, port=options.port, log_level="warning", access_log=False,
                            lifespan="off", timeout_graceful_shutdown=int(options.drain_seconds) or None,
                            limit_concurrency=options.limits.max_queue + options.max_batch + 16)
    server = Server(config)
    advert_path = None

    async def announce() -> None:
        nonlocal advert_path
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        sock = server.servers[0].sockets[0]
        port = sock.getsockname()[1]
        host = options.host if options.host not in ("0.0.0.0", "::") else socket.gethostname()
        url = _url(host, port)
        if options.advertise:
            local = url if is_loopback(options.host) else _url("127.0.0.1" if options.host == "0.0.0.0" else
                                                               options.host, port)
            advert_path = discovery.advertise(discovery.advert_now(local, session.name, session.model_id,
                                                                   session.codec_id, bool(options.api_key)))
        if on_ready is not None:
            on_ready(url, session)

    async def main() -> None:
        watcher = asyncio.ensure_future(announce())
        try:
            await server.serve()
        finally:
            watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        state.draining = True
        if advert_path is not None:
            discovery.withdraw(advert_path)
        scheduler.close(drain=False, timeout=10)
