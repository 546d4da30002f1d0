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
from higgs_cli.server.hosts import allowed_hosts
from higgs_cli.server.limits import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SLOTS, Limits


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_batch: int = DEFAULT_SLOTS
    api_key: str | None = None
    cors_origins: Sequence[str] = ()
    allowed_hosts: Sequence[str] = ()  # Host names served beside loopback ones ("*": any); see hosts.py
    voice_aliases: dict[str, str] = field(default_factory=dict)  # OpenAI voice name -> library voice
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


def uvicorn_config(app, state, host: str, port: int, *, drain_seconds: float = 30.0):
    """uvicorn's settings for a higgs server (the CLI's and the tests' alike): the guarded HTTP
    protocol (connections.py) and no global concurrency cap (its 503 came before the key check)."""
    import uvicorn

    from higgs_cli.server.connections import ConnectionGuard

    return uvicorn.Config(app, host=host, port=port, http=ConnectionGuard(state.limits).protocol(),
                          log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=5,
                          timeout_graceful_shutdown=int(drain_seconds) or None)


async def drain(server, state, options: ServeOptions) -> None:
    """Once a signal set `state.draining`: keep listening (new generations answer 503 with
    Retry-After, /health says "draining") until no generation runs and every response has been
    sent (uvicorn's tasks: a stream outlives its handler), or `drain_seconds` pass; then stop."""
    while not state.draining:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    deadline = asyncio.get_running_loop().time() + options.drain_seconds
    while (state.scheduler.busy or server.server_state.tasks) and asyncio.get_running_loop().time() < deadline:
        if server.should_exit:
            return
        await asyncio.sleep(0.05)
    server.should_exit = True


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
    state = ServerState(scheduler, limits=options.limits, api_key=options.api_key, library=VoiceLibrary(),
                        allowed_hosts=allowed_hosts(options.host, options.allowed_hosts, api_key=options.api_key),
                        voice_aliases=dict(options.voice_aliases))
    app = build_app(state, cors_origins=options.cors_origins)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            """The first signal drains (new requests 503, /health "draining", running ones finish,
            see `drain`); a second one stops at once."""
            if state.draining:
                self.should_exit = True
            state.draining = True

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

    server = Server(uvicorn_config(app, state, options.host, options.port, drain_seconds=options.drain_seconds))
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
        watchers = [asyncio.ensure_future(announce()), asyncio.ensure_future(drain(server, state, options))]
        try:
            await server.serve()
        finally:
            for watcher in watchers:
                watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        state.draining = True
        if advert_path is not None:
            discovery.withdraw(advert_path)
        scheduler.close(drain=False, timeout=10)
