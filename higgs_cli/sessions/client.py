"""`RemoteSession`: an `engine.api.Session` on a running `higgs serve`, without torch.

    session = RemoteSession.connect("http://127.0.0.1:8000")
    [result] = session.generate([request])      # the same codes and audio as in-process

Requests travel on the native endpoints (server/native.py) with bit-exact
arrays, so caching, resume, mastering and subtitles stay in the client and
work as they do with a local model.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import CHUNK_FRAMES, GenerationRequest, GenerationResult
from higgs_cli.errors import HiggsError, ModelError, UsageError
from higgs_cli.sessions import env
from higgs_cli.sessions.transport import Reply, Transport, TransportError, lines
from higgs_cli.sessions.wire import WireError, pack, request_to_json, unpack

CONNECT_SECONDS = 5.0
READ_SECONDS = 900.0  # a long render batch sends progress lines; this bounds the silence between them


class ServerError(HiggsError):
    """The server refused or failed a request (its message is passed on)."""


def _message(reply: Reply) -> str:
    try:
        return reply.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return reply.text[:300] or f"HTTP {reply.status}"


class RemoteSession:
    """A model session served by `higgs serve` at `url` (implements `engine.api.Session`)."""

    def __init__(self, url: str, info: dict, *, api_key: str | None = None,
                 client: Transport | None = None) -> None:
        self.url = url.rstrip("/")
        self.name: str = info["model"]
        self.model_id: str = info["model_id"]
        self.codec_id: str = info["codec_id"]
        self.is_random: bool = bool(info["is_random"])
        self.device: str = info.get("device", "?")
        self.slots: int = int(info.get("slots", 1))
        self._client = client or _client(self.url, api_key)

    @classmethod
    def connect(cls, url: str, *, api_key: str | None = None) -> RemoteSession:
        """Ask the server what it serves; a clear ModelError when it cannot be reached."""
        key = api_key if api_key is not None else env.api_key()
        try:
            client = _client(url.rstrip("/"), key)
            response = client.request("GET", "/higgs/v1/info", timeout=CONNECT_SECONDS)
        except TransportError as error:
            raise ModelError(f"cannot reach the higgs server at {url}: {error}",
                             hint=f"start it with `higgs serve`, check --server / ${env.SERVER_ENV}, or pass "
                                  "--no-server to load the model here") from None
        if response.status == 401 and key:
            raise UsageError(f"the higgs server at {url} refused the API key given: it is not that server's key",
                             hint=f"set ${env.KEY_ENV} to the key the server was started with")
        if response.status == 401:
            raise UsageError(f"the higgs server at {url} needs an API key", hint=f"set ${env.KEY_ENV}")
        if response.status != 200:
            raise ModelError(f"{url} did not answer as a higgs server: {_message(response)}",
                             hint="check the URL, or pass --no-server")
        try:
            return cls(url, response.json(), client=client)
        except (ValueError, KeyError, TypeError):
            raise ModelError(f"{url} did not answer as a higgs server",
                             hint="check the URL, or pass --no-server") from None

    def describe(self) -> dict:
        return {"kind": "server", "url": self.url, "model": self.name}

    def close(self) -> None:
        """Nothing to release: every request has its own connection."""

    # ------------------------------------------------------------------ Session

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int], None] | None = None) -> list[GenerationResult]:
        """Generate every request on the server (batched there with whatever else it runs)."""
        if not requests:
            return []
        results: list[GenerationResult | None] = [None] * len(requests)
        body = {"jobs": [request_to_json(r) for r in requests], "batch_size": batch_size}
        for event in self._lines("/higgs/v1/generate", body):
            if "progress" in event and progress is not None:
                progress(int(event["progress"]))
            elif "index" in event:
                codes = _array(event["codes"], "codes").astype(np.int64)
                results[event["index"]] = GenerationResult(codes=codes, audio=_array(event["audio"], "audio"),
                                                           finished=bool(event["finished"]))
        if any(r is None for r in results):
            raise ServerError(f"the server at {self.url} ended the answer before every line was generated",
                              hint="see the server's log; render again to resume from the cache")
        return results

    def stream(self, request: GenerationRequest, *, chunk_frames: int = CHUNK_FRAMES) -> Iterator[np.ndarray]:
        """Yield 24 kHz audio chunks as the server generates them (the same chunks as in-process)."""
        for event in self._lines("/higgs/v1/stream", {"job": request_to_json(request), "chunk_frames": chunk_frames}):
            if "audio" in event:
                yield _array(event["audio"], "audio")

    def encode_audio(self, audio: np.ndarray) -> np.ndarray:
        data = self._post("/higgs/v1/encode", {"audio": pack(audio, "float32")})
        return _array(data["codes"], "codes").astype(np.int64)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return _array(self._post("/higgs/v1/decode", {"codes": pack(codes, "int16")})["audio"], "audio")

    # ------------------------------------------------------------------ transport

    def _post(self, path: str, body: dict) -> dict:
        try:
            reply = self._client.request("POST", path, body)
        except TransportError as error:
            raise self._lost(error) from None
        if reply.status != 200:
            raise self._refused(reply)
        try:
            return reply.json()
        except ValueError:
            raise ServerError(f"the server at {self.url} sent a malformed answer") from None

    def _lines(self, path: str, body: dict) -> Iterator[dict]:
        """The NDJSON events of a streamed answer; an error event becomes a ServerError."""
        try:
            with self._client.stream("POST", path, body) as (status, response):
                if status != 200:
                    raise self._refused(Reply(status, response.read()))
                for line in lines(response):
                    event = json.loads(line)
                    if "error" in event:
                        raise ServerError(f"the server at {self.url} failed: {event['error'].get('message')}")
                    yield event
        except (TransportError, OSError, http.client.HTTPException) as error:
            raise self._lost(error) from None

    def _refused(self, reply: Reply) -> HiggsError:
        kind = UsageError if 400 <= reply.status < 500 and reply.status != 429 else ServerError
        hint = "the server is busy: try again shortly" if reply.status in (429, 503) else None
        return kind(f"the server at {self.url} refused the request ({reply.status}): {_message(reply)}",
                    hint=hint)

    def _lost(self, error: Exception) -> HiggsError:
        return ServerError(f"lost the connection to the server at {self.url}: {error}",
                           hint="check that `higgs serve` is still running, or pass --no-server")


def _client(url: str, api_key: str | None) -> Transport:
    return Transport(url, api_key=api_key, connect_seconds=CONNECT_SECONDS, read_seconds=READ_SECONDS)


def _array(value, field: str) -> np.ndarray:
    try:
        return unpack(value, field, dtypes=("int16", "int64", "float32"), max_items=1 << 31)
    except WireError as error:
        raise ServerError(f"the server sent a malformed answer: {error}") from None
