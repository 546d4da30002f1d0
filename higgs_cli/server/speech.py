"""`POST /v1/audio/speech`: OpenAI's speech API on the scheduler, with Boson's and SGLang-Omni's extras.

Fields: model, input, voice (a library voice on this server, or one of OpenAI's
stock names: names.py), instructions (the scene), response_format (wav flac mp3
opus aac pcm), speed (0.25-4.0),
stream_format (audio | sse); extras: seed, temperature, top_p, top_k,
ras_window, ras_max_repeat, max_new_tokens (frames), references
([{audio: base64, transcript}]). Unknown fields are ignored, as OpenAI's
clients may send some.

A streamed response's headers go out with its first audio, so a request that
times out or never gets a slot is answered 429/503/504 with the error; a stream
that fails after that is cut with a reset (never a clean end of a short file)
and the log says why.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from higgs_cli.engine.request import (
    CHUNK_FRAMES,
    DEFAULT_MAX_SECONDS,
    DEFAULT_SEED,
    FRAME_RATE,
    SAMPLE_RATE,
    GenerationRequest,
    Sampling,
    Turn,
    seconds_to_frames,
)
from higgs_cli.engine.text import normalize_text, nothing_to_speak
from higgs_cli.errors import HiggsError
from higgs_cli.server import audio as audio_out
from higgs_cli.server.body import read_json
from higgs_cli.server.common import ServerState, Waiter, authorize, check_prompt, submit, to_thread
from higgs_cli.server.connections import abort_from
from higgs_cli.server.errors import ApiError, bad
from higgs_cli.server.names import STOCK_VOICES, served_models
from higgs_cli.sessions.wire import WireError, number

log = logging.getLogger("higgs.server")


@dataclass
class SpeechJob:
    request: GenerationRequest
    fmt: str
    speed: float
    sse: bool
    voice_name: str | None  # a library voice, resolved to codes in a worker thread
    uploads: list[tuple[str, bytes, str]]  # (field, audio bytes, transcript), decoded in a worker thread


def _string(body: dict, key: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad(f"'{key}' must be a non-empty string", key)
    if len(value) > limit:
        raise bad(f"'{key}' is {len(value)} characters; this server takes at most {limit}", key, "too_long")
    return value


def _model(body: dict, state: ServerState) -> None:
    name = _string(body, "model", 500, required=True)
    session = state.session
    if name not in served_models(session):
        raise ApiError(404, f"model '{name}' is not served here; this server serves '{session.name}'",
                       param="model", code="model_not_found")


def _voice(body: dict, state: ServerState) -> tuple[str | None, str | None]:
    """(library voice, built-in description): an alias the server was given, a library voice, or
    one of OpenAI's stock names as a described voice (names.py); neither for the default voice."""
    voice = body.get("voice")
    if isinstance(voice, dict):  # newer clients send {"id": name}
        voice = voice.get("id")
    if voice in (None, "", "default"):
        return None, None
    if not isinstance(voice, str) or len(voice) > 200:
        raise bad("'voice' must be the name of a voice in this server's library", "voice")
    from higgs_cli.errors import UsageError

    try:
        if state.library is None:  # a server without a library (an embedding app's): stock names only
            raise UsageError(f"no voice '{voice}'")
        return state.library.get(state.voice_aliases.get(voice, voice)).name, None  # names checked there
    except UsageError:
        if voice in STOCK_VOICES and voice not in state.voice_aliases:
            return None, STOCK_VOICES[voice]
        names = [v.name for v in state.library.list()] if state.library is not None else []
        raise bad(f"unknown voice '{voice}'; voices on this server: {', '.join(names) or 'none'}, and OpenAI's "
                  f"{', '.join(STOCK_VOICES)} (or send 'references' with audio and its transcript to clone one)",
                  "voice", "voice_not_found") from None


def _uploads(body: dict, state: ServerState) -> list[tuple[str, bytes, str]]:
    """The uploaded reference clips as bytes, checked for size; decoded later, off the event loop."""
    limits = state.limits
    refs = body.get("references") or []
    if not isinstance(refs, list) or len(refs) > limits.max_references:
        raise bad(f"'references' must be a list of at most {limits.max_references} objects", "references")
    uploads = []
    for i, ref in enumerate(refs):
        where = f"references[{i}]"
        if not isinstance(ref, dict) or not isinstance(ref.get("audio"), str):
            raise bad(f"{where} must be an object with 'audio' (base64) and 'transcript'", where)
        transcript = ref.get("transcript", ref.get("text"))
        if not isinstance(transcript, str) or not transcript.strip():
            raise bad(f"{where}.transcript must be the words spoken in the clip", f"{where}.transcript")
        if len(transcript) > limits.max_input_chars:
            raise bad(f"{where}.transcript is {len(transcript)} characters; at most {limits.max_input_chars}",
                      f"{where}.transcript", "too_long")
        encoded = ref["audio"].split(",", 1)[1] if ref["audio"].startswith("data:") else ref["audio"]
        if len(encoded) > limits.max_reference_bytes * 4 // 3 + 4:
            raise ApiError(413, f"{where}.audio is larger than {limits.max_reference_bytes} bytes", param=where,
                           code="reference_too_large")
        try:
            uploads.append((where, base64.b64decode(encoded, validate=True), transcript))
        except (binascii.Error, ValueError) as error:
            raise bad(f"{where}.audio is not base64: {error}", f"{where}.audio", "invalid_audio") from None
    return uploads


def _references(uploads: list[tuple[str, bytes, str]], limits) -> list[Turn]:
    """Uploaded clips as reference turns (decoded here: a worker thread, never the event loop)."""
    from higgs_cli.voices.reference import MIN_SECONDS, REFERENCE_PEAK_DB, peak_normalize
    from higgs_cli.voices.reference_turn import ResolvedVoice, reference_turn

    turns = []
    for where, data, transcript in uploads:
        try:
            clip = audio_out.decode_upload(data, max_seconds=limits.max_reference_seconds,
                                           max_decoded_bytes=limits.max_reference_decoded_bytes)
        except ValueError as error:
            raise bad(f"{where}.audio is not usable audio: {error}", f"{where}.audio", "invalid_audio") from None
        if len(clip) < MIN_SECONDS * SAMPLE_RATE or not np.abs(clip).max() > 1e-3:
            raise bad(f"{where}.audio is silent or shorter than {MIN_SECONDS} s", f"{where}.audio", "invalid_audio")
        turns.append(reference_turn(ResolvedVoice(transcript, audio=peak_normalize(clip, REFERENCE_PEAK_DB))))
    return turns


def parse(body: dict, state: ServerState) -> SpeechJob:
    """A checked speech job; ApiError (400/404/413) names the field at fault."""
    limits = state.limits
    _model(body, state)
    text = _string(body, "input", limits.max_input_chars, required=True)
    if problem := nothing_to_speak(text, "'input'"):
        raise bad(problem, "input")
    scene = _string(body, "instructions", limits.max_input_chars)
    fmt = body.get("response_format", "mp3")
    if fmt not in audio_out.FORMATS:
        raise bad(f"response_format '{fmt}' is not one of {', '.join(audio_out.FORMATS)}", "response_format")
    if fmt not in audio_out.encodable():
        raise bad(f"this server cannot encode {fmt} (its libsndfile lacks it); use one of "
                  f"{', '.join(audio_out.encodable())}", "response_format", "unsupported_format")
    speed = body.get("speed", 1.0)
    low, high = audio_out.SPEED_RANGE
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not low <= speed <= high:
        raise bad(f"'speed' must be a number from {low} to {high}, got {speed!r}", "speed")
    if speed != 1.0 and not audio_out.can_stretch():
        raise bad("this server cannot change the speed (time-stretching needs ffmpeg); send speed 1.0", "speed",
                  "unsupported_speed")
    stream_format = body.get("stream_format", "audio")
    if stream_format not in ("audio", "sse"):
        raise bad(f"stream_format must be 'audio' or 'sse', got {stream_format!r}", "stream_format")
    defaults = Sampling()
    try:
        settings = {key: number(body.get(key, getattr(defaults, key)), key, key)
                    for key in ("temperature", "top_p", "top_k", "ras_window", "ras_max_repeat")}
        seed = number(body.get("seed", DEFAULT_SEED), "seed", "seed")
    except WireError as error:
        raise bad(str(error), error.field) from None
    most = seconds_to_frames(limits.max_seconds)
    frames = body.get("max_new_tokens", seconds_to_frames(min(DEFAULT_MAX_SECONDS, limits.max_seconds)))
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= most:
        raise bad(f"'max_new_tokens' (audio frames, {FRAME_RATE} a second) must be a whole number from 1 to {most}",
                  "max_new_tokens")
    uploads = _uploads(body, state)
    voice, described = (None, None) if uploads else _voice(body, state)
    parts = [part.strip() for part in (scene, f"SPEAKER0: {described}" if described else None) if part and part.strip()]
    request = GenerationRequest(text=normalize_text(text), scene="\n\n".join(parts) or None,
                                sampling=Sampling(**settings), seed=seed, max_frames=frames)
    return SpeechJob(request, fmt, float(speed), stream_format == "sse", voice, uploads)


def _with_voice(job: SpeechJob, state: ServerState) -> GenerationRequest:
    """The request with its reference turn: uploaded clips (decoded here), or the library voice's
    cached codes. Runs in a worker thread."""
    request = job.request
    if job.uploads:
        request.history = tuple(_references(job.uploads, state.limits))
    elif job.voice_name is not None:
        from higgs_cli.voices.reference_turn import library_voice, reference_turn

        voice = library_voice(job.voice_name, state.library)
        request.history = (reference_turn(voice, codec_id=state.session.codec_id, encode=state.scheduler.encode,
                                          library=state.library),)
    return request


async def speech(request: Request, state: ServerState) -> Response:
    authorize(request, state)
    job = parse(await read_json(request, state.limits), state)
    try:
        generation = await to_thread(_with_voice, job, state)
    except HiggsError as error:
        raise bad(f"voice '{job.voice_name}': {error.message}", "voice") from None
    check_prompt(generation, state.limits)
    [ticket] = await submit(state, [generation])
    media = "text/event-stream" if job.sse else audio_out.MEDIA_TYPES[job.fmt]
    if job.fmt in audio_out.STREAMED and job.speed == 1.0:
        waiter = Waiter(ticket, request, state.limits)  # watches the client until the response starts
        pieces = _streamed(waiter, job, state)
        first = await first_piece(pieces, ticket)  # an error before any audio is this response's status
        waiter.request = None  # from here the streaming response notices a client that went away
        body = _sse(_chain(first, pieces), ticket) if job.sse else _cut_on_error(first, pieces, request, ticket)
        return StreamingResponse(body, media_type=media, headers={"Cache-Control": "no-store"})
    else:  # whole-file formats (and stretched audio) are made once the audio is complete
        try:
            await Waiter(ticket, request, state.limits).finish()
        except BaseException:
            ticket.cancel()
            raise
        data = await to_thread(_whole_file, ticket, job, state)
        if not job.sse:
            return Response(data, media_type=media)
        return StreamingResponse(_sse(_single(data), ticket), media_type=media, headers={"Cache-Control": "no-store"})


def _whole_file(ticket, job: SpeechJob, state: ServerState) -> bytes:
    audio = state.scheduler.decode(ticket.codes())
    return audio_out.encode(audio_out.stretch(audio, job.speed), job.fmt)


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _streamed(waiter: Waiter, job: SpeechJob, state: ServerState) -> AsyncIterator[bytes]:
    """PCM or WAV bytes as the audio is generated; the ticket is cancelled if the client goes away."""
    from higgs_cli.engine.decode.chunks import ChunkDecoder

    chunks = ChunkDecoder(state.scheduler.decode, CHUNK_FRAMES, job.request.max_frames)
    try:
        header = audio_out.wav_stream_header() if job.fmt == "wav" else b""
        done = False
        while not done:
            blocks, done = await waiter.next()  # ApiError: before the first piece a status, after it a cut
            for block in blocks:
                made = await to_thread(chunks.add, block) if chunks.decodes_after(len(block)) else chunks.add(block)
                for chunk in made:
                    yield header + audio_out.pcm16(chunk)
                    header = b""
        rest = await to_thread(chunks.finish)
        if rest is not None or header:  # a WAV whose audio is empty is still a WAV
            yield header + (audio_out.pcm16(rest) if rest is not None else b"")
    finally:
        waiter.ticket.cancel()  # a no-op once it ended; frees the slot when the client left


async def first_piece(pieces: AsyncIterator[bytes], ticket) -> bytes | None:
    """The stream's first piece of audio (None when it has none), before any header is sent; its
    errors, a timeout or a cancellation included, are raised here and cancel the ticket."""
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return None
    except BaseException:
        ticket.cancel()
        await pieces.aclose()
        raise


async def _chain(first: bytes | None, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is not None:
        yield first
        async for piece in pieces:
            yield piece


async def _cut_on_error(first: bytes | None, pieces: AsyncIterator[bytes], request: Request,
                        ticket) -> AsyncIterator[bytes]:
    """The audio after its first piece; a failure resets the connection (a client reading a
    chunked body then sees an error, never a clean end) and is logged."""
    try:
        async for piece in _chain(first, pieces):
            yield piece
    except ApiError as error:
        log.warning("speech stream failed after its first audio, connection reset: %s", error.message)
        ticket.cancel()
        abort = abort_from(request.scope)
        if abort is None:
            raise
        abort()


async def _sse(pieces: AsyncIterator[bytes], ticket) -> AsyncIterator[bytes]:
    """OpenAI's speech events: `speech.audio.delta` (base64 audio) ..., then `speech.audio.done`."""
    try:
        async for piece in pieces:
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode("ascii")}
            yield f"data: {json.dumps(event)}\n\n".encode()
    except ApiError as error:
        yield f"data: {json.dumps({'type': 'error', **error.body()})}\n\n".encode()
        return
    frames = len(ticket.frames())
    done = {"type": "speech.audio.done",
            "usage": {"input_tokens": len(ticket.job.prompt.input_ids), "output_tokens": frames,
                      "total_tokens": len(ticket.job.prompt.input_ids) + frames}}
    yield f"data: {json.dumps(done)}\n\n".encode()
