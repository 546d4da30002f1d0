"""HTTP to a `higgs serve` with the standard library: JSON bodies in, whole or line-streamed answers out.

Used by `client.RemoteSession`, on the path of every `higgs say --server`: `import
httpx` alone took 76 ms here (its command-line helper pulls in pygments) and each
new httpx client 20 ms (it loads the system's certificates), about 7% of a warm
1.3 s `say`; `http.client` is imported already. One connection per request: a
loopback connect costs a fraction of a millisecond, and no idle connection can be
closed under a request by the server's keep-alive timer.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit


class TransportError(Exception):
    """The server could not be reached, or the connection broke or timed out."""


@dataclass(frozen=True)
class Reply:
    """A whole answer: its status and body."""

    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Transport:
    """Requests to the server at `url` (http or https), with an optional bearer key."""

    def __init__(self, url: str, *, api_key: str | None = None, connect_seconds: float = 5.0,
                 read_seconds: float = 900.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"not an http(s) URL: {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.connect_seconds = connect_seconds
        self.read_seconds = read_seconds
        self._tls: ssl.SSLContext | None = None  # made on the first https request: it loads certificates

    def request(self, method: str, path: str, body: dict | None = None, *,
                timeout: float | None = None) -> Reply:
        """Send one request and read the whole answer."""
        with self.stream(method, path, body, timeout=timeout) as (status, response):
            try:
                return Reply(status, response.read())
            except (OSError, http.client.HTTPException) as error:
                raise TransportError(_describe(error)) from None

    @contextmanager
    def stream(self, method: str, path: str, body: dict | None = None, *,
               timeout: float | None = None) -> Iterator[tuple[int, http.client.HTTPResponse]]:
        """Send one request; yield (status, response) to read as it arrives (`lines` reads NDJSON)."""
        connection = self._connect(timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            try:
                connection.request(method, self.base + path, body=data, headers=self.headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                raise TransportError(_describe(error)) from None
            yield response.status, response
        finally:
            connection.close()

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        """A connected connection whose reads wait up to `timeout` (default read_seconds)."""
        if self.https:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.connect_seconds,
                                                     context=self._tls)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_seconds)
        try:
            connection.connect()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            raise TransportError(_describe(error)) from None
        connection.sock.settimeout(self.read_seconds if timeout is None else timeout)
        return connection


def lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The non-empty lines of a streamed answer, as they arrive; TransportError where it was cut off.

    Read with `read1`, not `readline`: on a chunked answer `readline` ends quietly where the
    connection broke, and a truncated stream must never pass for a whole one.
    """
    buffer = bytearray()
    try:
        while True:
            data = response.read1(1 << 16)
            if not data:
                break
            start = len(buffer)
            buffer += data
            end = buffer.rfind(b"\n", start)  # only the new data can hold a new line end
            if end < 0:
                continue
            complete = bytes(buffer[:end])
            del buffer[:end + 1]
            yield from (line for line in complete.split(b"\n") if line.strip())
    except (OSError, http.client.HTTPException) as error:
        raise TransportError(_describe(error)) from None
    if not response.chunked and response.length:  # a Content-Length answer that stopped short
        raise TransportError("the answer ended early")
    if buffer.strip():
        yield bytes(buffer)


def _describe(error: Exception) -> str:
    if isinstance(error, socket.timeout):
        return "timed out"
    if isinstance(error, http.client.IncompleteRead):
        return "the answer ended early"
    return str(error) or type(error).__name__
