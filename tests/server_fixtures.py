"""A real `higgs serve` app on uvicorn in a thread, on a free loopback port, for the server tests."""

from __future__ import annotations

import socket
import threading
import time

import httpx

API_KEY = "test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn serving `build_app` over a Scheduler of `session`; `stop()` drains it."""

    def __init__(self, session, *, api_key: str | None = API_KEY, slots: int = 4, limits=None, library=None,
                 allowed_hosts=(), voice_aliases=None) -> None:
        import uvicorn

        from higgs_cli.engine.scheduler import Scheduler
        from higgs_cli.server.app import build_app
        from higgs_cli.server.common import ServerState
        from higgs_cli.server.hosts import allowed_hosts as hosts_for
        from higgs_cli.server.limits import Limits
        from higgs_cli.server.run import uvicorn_config

        limits = limits or Limits()
        self.scheduler = Scheduler(session, slots=slots, max_queue=limits.max_queue).start()
        self.state = ServerState(self.scheduler, limits=limits, api_key=api_key, library=library,
                                 allowed_hosts=hosts_for("127.0.0.1", allowed_hosts, api_key=api_key),
                                 voice_aliases=dict(voice_aliases or {}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(build_app(self.state), self.state, "127.0.0.1", self.port))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.state.api_key}"} if self.state.api_key else {}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60, trust_env=False)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.scheduler.close(drain=False, timeout=10)
