"""The `Host` check: a server answers only requests addressed to a name it serves.

A web page can make the browser send requests to 127.0.0.1 under a name the
page's owner controls (DNS rebinding: `evil.test` first resolves to the
owner's machine, then to 127.0.0.1), and the browser then treats the answers
as the page's own. Such requests still carry `Host: evil.test`, so a server
that answers only its own names is out of the page's reach.

    allowed_hosts(bind="127.0.0.1", extra=(), api_key=None)  -> the names, or None for any
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from higgs_cli.server.errors import ApiError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = ("0.0.0.0", "::", "")


def allowed_hosts(bind: str, extra: Sequence[str] = (), *, api_key: str | None = None) -> frozenset[str] | None:
    """The Host names a server bound to `bind` answers: loopback names, the bound address, `extra`;
    None (any name) for `extra` holding `*`, or for a keyed server given no names (a page cannot
    send the key it does not know, and a container or proxy reaches the server under any name)."""
    names = {host_name(name) for name in extra}
    if "*" in names or (api_key and not names):
        return None
    if bind.strip("[]") not in WILDCARDS:
        names.add(host_name(bind))
    return frozenset(LOOPBACK_NAMES | names)


def host_name(value: str) -> str:
    """`Host` header or address -> the bare lower-case name: no port, no brackets, no final dot."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class HostCheck:
    """ASGI middleware: 403 (OpenAI's error shape) for a request whose Host is not an allowed name."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str], on_refused=None) -> None:
        self.app, self.allowed, self.on_refused = app, allowed, on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if host_name(given) not in self.allowed:
                if self.on_refused is not None:
                    self.on_refused()
                shown = ", ".join(sorted(self.allowed))
                error = ApiError(403, f"this server does not answer requests addressed to '{given[:100]}': it "
                                      f"serves {shown} (start it with --allowed-host NAME to add a name)",
                                 code="host_not_allowed")
                await error.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
