"""Starting the studio: a socket on 127.0.0.1 (a free port unless one is asked), a random token in
the URL, uvicorn in a thread; `wait` serves until Ctrl-C, `stop` ends it (tests start and stop it).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.studio.state import Studio

HOST = "127.0.0.1"  # loopback only: the studio writes the project and plays its audio to whoever asks


@dataclass
class RunningStudio:
    url: str  # with the token: the one address that opens the page
    port: int
    token: str
    server: Any
    thread: threading.Thread
    app: Any = field(repr=False, default=None)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def wait(self) -> None:
        """Serve until Ctrl-C (or the server stops); then stop it."""
        try:
            while self.thread.is_alive():
                self.thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


def _bind(port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port", hint="use 1-65535, or leave it out for a free one")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {HOST}:{port}: {error.strerror}",
                         hint="leave --port out to take a free port") from None
    sock.listen(64)
    return sock


def start_studio(studio: Studio, *, port: int = 0, token: str | None = None, ready_timeout: float = 30.0
                 ) -> RunningStudio:
    """Serve `studio` on loopback in a background thread; return once it accepts connections."""
    import uvicorn

    from higgs_cli.studio.app import build_app

    token = token or secrets.token_urlsafe(24)
    sock = _bind(port)
    port = sock.getsockname()[1]
    app = build_app(studio, token)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=5)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # older uvicorn; the thread is not the main one anyway
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="higgs-studio", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            with contextlib.suppress(OSError):
                sock.close()
            raise HiggsError("the studio's web server did not start", hint="run again with --debug")
        time.sleep(0.02)
    return RunningStudio(url=f"http://{HOST}:{port}/?token={token}", port=port, token=token, server=server,
                         thread=thread, app=app)
