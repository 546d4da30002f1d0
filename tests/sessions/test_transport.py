"""The torch-free client's HTTP layer (server/transport.py) against a real HTTP server on loopback
that misbehaves on purpose: every failure is a clear HiggsError, never a traceback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from higgs_cli.errors import ModelError, UsageError
from higgs_cli.sessions.client import RemoteSession, ServerError
from higgs_cli.sessions.transport import Transport, TransportError, lines

INFO = {"model": "m", "model_id": "a", "codec_id": "b", "is_random": True, "device": "cpu", "slots": 2}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict = {}

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        self.routes[self.path](self)

    do_GET = do_POST = _answer

    def whole(self, status: int, data: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture
def server():
    routes: dict = {"/higgs/v1/info": lambda h: h.whole(200, json.dumps(INFO).encode())}
    handler = type("Routes", (Handler,), {"routes": routes})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.seen = []
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.routes = routes
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def streamed(events: list[bytes], *, end: bool = True):
    """A route answering NDJSON in chunks; end=False drops the connection before the last chunk."""
    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for event in events:
            h.chunk(event)
        if end:
            h.wfile.write(b"0\r\n\r\n")
        h.close_connection = True
    return route


def test_lines_arrive_from_a_chunked_answer(server):
    server.routes["/s"] = streamed([b'{"a": 1}\n{"b"', b': 2}\n', b"\n", b'{"c": 3}\n'])
    with Transport(server.url).stream("POST", "/s", {"x": 1}) as (status, response):
        assert status == 200
        assert [json.loads(line) for line in lines(response)] == [{"a": 1}, {"b": 2}, {"c": 3}]
    method, path, headers, body = server.seen[-1]
    assert (method, path, json.loads(body)) == ("POST", "/s", {"x": 1})
    assert headers["Content-Type"] == "application/json"


def test_the_api_key_is_sent_as_a_bearer_token(server):
    remote = RemoteSession.connect(server.url, api_key="k3y")
    assert remote.name == "m" and remote.slots == 2
    assert server.seen[-1][2]["Authorization"] == "Bearer k3y"


def test_a_stream_cut_off_midway_is_a_lost_connection(server):
    server.routes["/higgs/v1/generate"] = streamed([b'{"progress": 1}\n'], end=False)
    remote = RemoteSession.connect(server.url)
    with pytest.raises(ServerError, match="lost the connection to the server"):
        remote.generate([_request()])


def test_an_error_event_in_a_stream_is_the_servers_message(server):
    server.routes["/higgs/v1/generate"] = streamed([b'{"error": {"message": "out of memory"}}\n'])
    with pytest.raises(ServerError, match="failed: out of memory"):
        RemoteSession.connect(server.url).generate([_request()])


def test_a_refusal_passes_on_the_servers_message(server):
    server.routes["/higgs/v1/decode"] = lambda h: h.whole(429, b'{"error": {"message": "queue full"}}')
    with pytest.raises(ServerError, match=r"refused the request \(429\): queue full") as caught:
        RemoteSession.connect(server.url).decode(_codes())
    assert "try again shortly" in caught.value.hint


@pytest.mark.parametrize("status, body, error, message", [
    (401, b"{}", UsageError, "needs an API key"),
    (404, b"not found", ModelError, "did not answer as a higgs server: not found"),
    (200, b"<html>hello</html>", ModelError, "did not answer as a higgs server"),
    (200, b'{"model": "m"}', ModelError, "did not answer as a higgs server"),
])
def test_a_server_that_is_not_a_higgs_server(server, status, body, error, message):
    server.routes["/higgs/v1/info"] = lambda h: h.whole(status, body)
    with pytest.raises(error, match=message):
        RemoteSession.connect(server.url)


def test_a_malformed_answer_is_a_server_error(server):
    server.routes["/higgs/v1/decode"] = lambda h: h.whole(200, b"{not json")
    with pytest.raises(ServerError, match="malformed answer"):
        RemoteSession.connect(server.url).decode(_codes())


def test_nothing_listening_and_a_url_without_a_scheme(server):
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    with pytest.raises(ModelError, match="cannot reach the higgs server"):
        RemoteSession.connect(f"http://127.0.0.1:{port}")
    with pytest.raises(ModelError, match="not an http"):
        RemoteSession.connect(f"127.0.0.1:{port}")


def test_a_silent_server_times_out(server):
    server.routes["/slow"] = lambda h: (time.sleep(1.0), h.whole(200, b"{}"))
    with pytest.raises(TransportError, match="timed out"):
        Transport(server.url, read_seconds=0.2).request("GET", "/slow")


def test_https_is_verified_and_never_falls_back_to_plain_http(server):
    """An https URL speaks TLS with the system's certificates: against a plain-HTTP port that fails."""
    transport = Transport(server.url.replace("http:", "https:"))
    with pytest.raises(TransportError):
        transport.request("GET", "/higgs/v1/info")
    assert transport._tls is not None and transport._tls.check_hostname
    assert not any(path == "/higgs/v1/info" for _, path, _, _ in server.seen)


def _request():
    from higgs_cli.engine.request import GenerationRequest

    return GenerationRequest(text="hello")


def _codes():
    import numpy as np

    return np.zeros((8, 3), dtype=np.int64)


def test_a_cut_off_audio_stream_is_never_taken_as_whole(server):
    """`say --stream` through a server must not write a short file as if it were complete."""
    from higgs_cli.sessions.wire import pack

    chunk = json.dumps({"audio": pack(_codes().astype("float32")[0], "float32")}).encode() + b"\n"
    server.routes["/higgs/v1/stream"] = streamed([chunk, chunk], end=False)
    remote = RemoteSession.connect(server.url)
    received = []
    with pytest.raises(ServerError, match="lost the connection"):
        for audio in remote.stream(_request()):
            received.append(audio)
    assert len(received) == 2


@pytest.mark.slow
def test_the_client_imports_no_http_library_beyond_the_standard_one():
    """A warm `higgs say` pays for every import: httpx alone was 76 ms of it."""
    import subprocess
    import sys

    code = ("import sys, higgs_cli.sessions.client, higgs_cli.sessions.connect; "
            "sys.exit(any(m in sys.modules for m in ('httpx', 'httpcore', 'pygments')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
