"""Connections that never finish are closed: uvicorn's HTTP/1.1 protocol with deadlines and a cap.

    config = uvicorn.Config(app, http=ConnectionGuard(limits).protocol(), ...)

uvicorn alone waits for a request's headers and body as long as the client
likes (a client sending one byte a second, or a body shorter than its
Content-Length, held a connection forever), and its only cap
(`limit_concurrency`) answers 503 to everyone, key holders and `/health`
included, once idle sockets fill it. Here instead:

- a request's headers must arrive within `header_timeout` seconds of the
  connection (or of the previous response), else the connection is closed;
- its body within `body_timeout` seconds of its headers, else the same;
- a client (an IP address) may hold `max_idle_per_client` connections that
  are waiting for a request; one more closes its oldest idle one (the
  newest is kept: on loopback or behind a NAT, a real client shares its
  address with the pile).

Nothing else is refused before the endpoint sees the request, so an idle
pile cannot starve `/health` or a key holder; what a request may cost is
bounded after the key check (the scheduler's queue, 429).

A stream that fails after its first bytes is cut with a reset (`abort`, put in
the ASGI scope as `higgs.abort`), so no client mistakes it for a short file.
"""

from __future__ import annotations

import collections
import logging
import socket
import struct
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

from higgs_cli.server.limits import Limits

log = logging.getLogger("higgs.server")
ABORT_KEY = "higgs.abort"


def abort_from(scope: dict):
    """The scope's `abort()` (reset the connection), or None under another server."""
    return scope.get("extensions", {}).get(ABORT_KEY)


class ConnectionGuard:
    """Deadlines and per-client caps shared by every connection of one server."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.idle: dict[str, collections.OrderedDict] = {}  # client host -> {protocol: idle since}

    def protocol(self) -> type:
        """The uvicorn HTTP protocol class for this guard (pass as `uvicorn.Config(http=...)`)."""
        guard = self

        class GuardedH11Protocol(H11Protocol):
            _timer = None

            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                guard.waiting(self)

            def connection_lost(self, exc) -> None:
                guard.forget(self)
                super().connection_lost(exc)

            def handle_events(self) -> None:
                before = self.cycle
                super().handle_events()
                cycle = self.cycle
                if cycle is not None and cycle is not before:  # a request's headers arrived
                    self.scope.setdefault("extensions", {})[ABORT_KEY] = self.abort
                    guard.forget(self)
                    if cycle.more_body:
                        guard.deadline(self, guard.limits.body_timeout, "its request body")
                if cycle is not None and not cycle.more_body and self._timer is not None \
                        and guard.idle.get(self._host(), {}).get(self) is None:
                    self._timer.cancel()  # the body is complete
                    self._timer = None

            def on_response_complete(self) -> None:
                if not self.transport.is_closing():
                    guard.waiting(self)  # before uvicorn looks at a pipelined request
                super().on_response_complete()

            def abort(self) -> None:
                """Reset the connection (RST, not FIN): the client sees an error, not an end."""
                sock = self.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                self.transport.abort()

            def _host(self) -> str:
                return self.client[0] if self.client else "?"

        return GuardedH11Protocol

    def waiting(self, conn) -> None:
        """`conn` waits for a request: start its header deadline, count it against its client."""
        peers = self.idle.setdefault(conn._host(), collections.OrderedDict())
        peers[conn] = time.monotonic()
        self.deadline(conn, self.limits.header_timeout, "a request's headers")
        while len(peers) > self.limits.max_idle_per_client:
            oldest = next(iter(peers))  # the newest is kept: it may be a real client behind the pile
            log.info("closing an idle connection from %s: it has %d waiting", conn._host(), len(peers))
            self.forget(oldest)
            oldest.transport.close()

    def forget(self, conn) -> None:
        """`conn` is busy or gone: no longer idle, no deadline."""
        peers = self.idle.get(conn._host())
        if peers is not None:
            peers.pop(conn, None)
            if not peers:
                del self.idle[conn._host()]
        if conn._timer is not None:
            conn._timer.cancel()
            conn._timer = None

    def deadline(self, conn, seconds: float, what: str) -> None:
        if conn._timer is not None:
            conn._timer.cancel()

        def expired() -> None:
            conn._timer = None
            if not conn.transport.is_closing():
                log.info("closing a connection from %s: %s did not arrive within %g s", conn._host(), what,
                         seconds)
                self.forget(conn)
                conn.transport.close()

        conn._timer = conn.loop.call_later(seconds, expired)

    def idle_count(self) -> int:
        return sum(len(peers) for peers in self.idle.values())
