"""The native endpoints the CLI's `RemoteSession` uses (JSON arrays from `wire`, bit-exact):

    GET  /higgs/v1/info      the model's name and fingerprints, device, slots
    POST /higgs/v1/generate  {"jobs": [job, ...], "batch_size"} -> NDJSON: {"progress": frames} ...,
                             then {"index", "codes", "audio", "finished"} per job, {"done": true}
    POST /higgs/v1/stream    {"job": job} -> NDJSON: {"audio": chunk} ..., {"done": true, "finished"}
    POST /higgs/v1/encode    {"audio": float32} -> {"codes"}
    POST /higgs/v1/decode    {"codes"} -> {"audio": float32}

A job is `wire.request_to_json(GenerationRequest)`: text, history (codes, or
audio the server encodes), scene, system, sampling, seed, max_frames. The
client keeps caching, resume, mastering and subtitles; the server only generates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import CHUNK_FRAMES, SAMPLE_RATE, seconds_to_frames
from higgs_cli.server.body import read_json
from higgs_cli.server.common import ServerState, Waiter, authorize, check_prompt, submit, to_thread
from higgs_cli.server.errors import ApiError, bad
from higgs_cli.sessions.wire import JobLimits, WireError, audio_from, codes_from, pack, request_from_json

NDJSON = "application/x-ndjson"


def _job_limits(state: ServerState) -> JobLimits:
    limits = state.limits
    return JobLimits(max_chars=limits.max_input_chars, max_frames=seconds_to_frames(limits.max_seconds),
                     max_history=limits.max_history, max_turn_frames=seconds_to_frames(limits.max_seconds),
                     max_turn_samples=int(limits.max_reference_seconds * SAMPLE_RATE))


def _line(data: dict) -> bytes:
    return (json.dumps(data) + "\n").encode()


async def info(request: Request, state: ServerState) -> Response:
    authorize(request, state)
    return JSONResponse(state.info())


async def generate(request: Request, state: ServerState) -> Response:
    authorize(request, state)
    body = await read_json(request, state.limits)
    jobs = body.get("jobs")
    if not isinstance(jobs, list) or not 1 <= len(jobs) <= state.limits.max_jobs:
        raise bad(f"'jobs' must be a list of 1 to {state.limits.max_jobs} jobs", "jobs")
    try:
        requests = [request_from_json(job, f"jobs[{i}]", _job_limits(state)) for i, job in enumerate(jobs)]
    except WireError as error:
        raise bad(str(error), error.field) from None
    for i, generation in enumerate(requests):
        check_prompt(generation, state.limits, f"jobs[{i}]")
    batch_size = body.get("batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 1024:
        raise bad("'batch_size' must be a whole number from 1 to 1024", "batch_size")
    tickets = await submit(state, requests)
    return StreamingResponse(_results(state, tickets, batch_size), media_type=NDJSON)


async def _results(state: ServerState, tickets: list, batch_size: int) -> AsyncIterator[bytes]:
    """Progress (frames made) while the jobs generate, then each job's codes and audio, decoded
    together as `ModelSession.generate` decodes one call (the same samples); cancels all on disconnect."""
    # the streaming response notices a client that went away and cancels this generator
    waiters = {i: Waiter(ticket, None, state.limits) for i, ticket in enumerate(tickets)}
    pending: dict = {}
    try:
        pending.update({asyncio.ensure_future(w.next()): i for i, w in waiters.items()})
        while pending:
            finished, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            made = 0
            for future in finished:
                index = pending.pop(future)
                try:
                    blocks, done = future.result()
                except ApiError as error:
                    yield _line(error.body())
                    return
                made += sum(len(b) for b in blocks)
                if not done:
                    pending[asyncio.ensure_future(waiters[index].next())] = index
            if made:
                yield _line({"progress": made})
        codes = [ticket.codes() for ticket in tickets]
        audio = await to_thread(lambda: state.scheduler.decode_many(codes, batch_size=batch_size))
        for index, ticket in enumerate(tickets):
            yield _line({"index": index, "codes": pack(codes[index], "int16"), "audio": pack(audio[index], "float32"),
                         "finished": ticket.finished})
        yield _line({"done": True})
    finally:
        for future in pending:
            future.cancel()
        for ticket in tickets:
            ticket.cancel()


async def stream(request: Request, state: ServerState) -> Response:
    from higgs_cli.engine.decode.chunks import ChunkDecoder

    authorize(request, state)
    body = await read_json(request, state.limits)
    chunk_frames = body.get("chunk_frames", CHUNK_FRAMES)
    if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or not 1 <= chunk_frames <= 1000:
        raise bad("'chunk_frames' must be a whole number from 1 to 1000", "chunk_frames")
    try:
        generation = request_from_json(body.get("job"), "job", _job_limits(state))
    except WireError as error:
        raise bad(str(error), error.field) from None
    check_prompt(generation, state.limits, "job")
    [ticket] = await submit(state, [generation])
    waiter = Waiter(ticket, None, state.limits)

    async def chunks() -> AsyncIterator[bytes]:
        decoder = ChunkDecoder(state.scheduler.decode, chunk_frames, generation.max_frames)
        try:
            done = False
            while not done:
                try:
                    blocks, done = await waiter.next()
                except ApiError as error:
                    yield _line(error.body())
                    return
                for block in blocks:
                    made = await to_thread(decoder.add, block) if decoder.decodes_after(len(block)) else \
                        decoder.add(block)
                    for chunk in made:
                        yield _line({"audio": pack(chunk, "float32")})
            rest = await to_thread(decoder.finish)
            if rest is not None:
                yield _line({"audio": pack(rest, "float32")})
            yield _line({"done": True, "finished": ticket.finished})
        finally:
            ticket.cancel()

    return StreamingResponse(chunks(), media_type=NDJSON)


async def encode(request: Request, state: ServerState) -> Response:
    authorize(request, state)
    body = await read_json(request, state.limits)
    try:
        audio = audio_from(body.get("audio"), "audio", max_samples=int(state.limits.max_reference_seconds
                                                                       * SAMPLE_RATE))
    except WireError as error:
        raise bad(str(error), error.field) from None
    if not len(audio):
        raise bad("'audio' has no samples", "audio")
    codes = await to_thread(state.scheduler.encode, audio)
    return JSONResponse({"codes": pack(codes, "int16")})


async def decode(request: Request, state: ServerState) -> Response:
    authorize(request, state)
    body = await read_json(request, state.limits)
    try:
        codes = codes_from(body.get("codes"), "codes", max_frames=seconds_to_frames(state.limits.max_seconds) * 4)
    except WireError as error:
        raise bad(str(error), error.field) from None
    audio = await to_thread(state.scheduler.decode, codes)
    return JSONResponse({"audio": pack(audio, "float32")})
