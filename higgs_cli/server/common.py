"""What every endpoint shares: the server's state, the API key check, submitting to the scheduler
and waiting for a ticket without blocking the event loop. (Reading a body: body.py.)"""

from __future__ import annotations

import asyncio
import collections
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from higgs_cli.errors import HiggsError
from higgs_cli.server.errors import ApiError
from higgs_cli.server.hosts import LOOPBACK_NAMES
from higgs_cli.server.limits import Limits

POLL_SECONDS = 0.25  # how often a waiting request checks that its client is still there


@dataclass
class ServerState:
    """The one scheduler (and its session) and everything the endpoints count or check."""

    scheduler: Any  # engine.scheduler.Scheduler
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES  # Host names answered; None: any (hosts.py)
    voice_aliases: dict[str, str] = field(default_factory=dict)  # OpenAI voice name -> library voice
    library: Any = None  # a voices.library.VoiceLibrary (the server's own voices)
    started: float = field(default_factory=time.time)
    responses: collections.Counter = field(default_factory=collections.Counter)  # (endpoint, status) -> n
    in_flight: int = 0
    draining: bool = False

    @property
    def session(self):
        return self.scheduler.session

    def info(self) -> dict:
        session = self.session
        return {"model": session.name, "model_id": session.model_id, "codec_id": session.codec_id,
                "is_random": bool(session.is_random), "device": str(session.device),
                "dtype": str(session.dtype).removeprefix("torch."), "slots": self.scheduler.slots, "api": 1}


def authorize(request: Request, state: ServerState) -> None:
    """401 unless the request carries the server's API key (compared in constant time)."""
    if state.api_key is None:
        return
    header = request.headers.get("authorization", "")
    given = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not given:
        raise ApiError(401, "this server needs an API key: send it as 'Authorization: Bearer KEY'",
                       code="missing_api_key")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), state.api_key.encode("utf-8")):
        raise ApiError(401, "wrong API key: the key sent is not this server's (check $HIGGS_API_KEY)",
                       code="invalid_api_key")


def check_prompt(request, limits: Limits, where: str = "") -> None:
    """413 when one request's prompt (reference and history audio, and all its text) is past the
    server's bound: a prompt's cost (memory, prefill) grows with it, whatever each part's own limit."""
    from higgs_cli.engine.request import FRAME_RATE, SAMPLES_PER_FRAME

    per_frame = SAMPLES_PER_FRAME
    frames = sum(turn.codes.shape[-1] if turn.codes is not None else -(-len(turn.audio) // per_frame)
                 for turn in request.history)
    chars = len(request.text) + len(request.scene or "") + len(request.system or "") + \
        sum(len(turn.text) for turn in request.history)
    prefix = f"{where}: " if where else ""
    if frames > limits.max_prompt_frames:
        raise ApiError(413, f"{prefix}the prompt holds {frames} frames of reference and history audio "
                            f"({frames / FRAME_RATE:.0f} s); this server takes at most {limits.max_prompt_frames} "
                            f"({limits.max_prompt_frames / FRAME_RATE:.0f} s) in one request",
                       param=where or None, code="prompt_too_large")
    if chars > limits.max_prompt_chars:
        raise ApiError(413, f"{prefix}the prompt holds {chars} characters of text, history and scene; this "
                            f"server takes at most {limits.max_prompt_chars} in one request",
                       param=where or None, code="prompt_too_large")


async def submit(state: ServerState, requests: list) -> list:
    """Queue requests on the scheduler (prompts are built in a worker thread)."""
    from higgs_cli.engine.scheduler import Cancelled, QueueFull

    if state.draining:
        raise ApiError(503, "the server is shutting down", code="shutting_down",
                       headers={"Retry-After": str(state.limits.retry_after)})
    try:
        return await asyncio.to_thread(state.scheduler.submit_many, requests)
    except QueueFull as error:
        raise ApiError(429, f"the server is busy: {error}; try again shortly", code="queue_full",
                       headers={"Retry-After": str(state.limits.retry_after)}) from None
    except Cancelled:
        raise ApiError(503, "the server is shutting down", code="shutting_down",
                       headers={"Retry-After": str(state.limits.retry_after)}) from None
    except HiggsError as error:
        raise ApiError(400, error.message) from None


class Waiter:
    """Awaits a ticket's news (frames, its end) from the event loop; cancels it when the client
    disconnects or the request runs past its time limit."""

    def __init__(self, ticket, request: Request | None, limits: Limits) -> None:
        self.ticket = ticket
        self.request = request
        self.deadline = time.monotonic() + limits.request_timeout
        self.event = asyncio.Event()
        loop = asyncio.get_running_loop()

        def tell() -> None:  # from the model's thread; the loop may be gone once the server stopped
            try:
                loop.call_soon_threadsafe(self.event.set)
            except RuntimeError:
                pass

        ticket.listener = tell

    async def next(self) -> tuple[list, bool]:
        """The next frame blocks (maybe none) and whether the ticket has ended."""
        while True:
            self.event.clear()
            blocks, done = self.ticket.take()
            if blocks or done:
                if done and self.ticket.error is not None:
                    raise ApiError(500, f"generation failed: {self.ticket.error}", code="generation_failed")
                return blocks, done
            if time.monotonic() > self.deadline:
                self.ticket.cancel()
                raise ApiError(504, "the request took longer than the server's time limit", code="timeout")
            try:
                await asyncio.wait_for(self.event.wait(), POLL_SECONDS)
            except asyncio.TimeoutError:
                if self.request is not None and await self.request.is_disconnected():
                    self.ticket.cancel()
                    raise asyncio.CancelledError from None

    async def finish(self) -> None:
        """Wait until the ticket ends."""
        done = False
        while not done:
            _, done = await self.next()


def to_thread(fn, *args):
    """Run blocking work (the codec, prompt building) off the event loop."""
    return asyncio.to_thread(fn, *args)
