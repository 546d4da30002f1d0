"""The studio's ASGI app (Starlette): the page, its state, its actions, and the project's audio.

Every request must carry the studio's token (`?token=` or the `X-Studio-Token` header) and name
this machine in its Host header; anything else is refused with 403 before a route runs. Bad input
is a 4xx with the library's own message (UsageError 400; a stale page, a held lock or a busy
studio 409); only a bug is a 500, and that never carries a traceback. Files are served from the
project's build folder only; line audio comes from the project's cache by key.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import wave
from importlib import resources
from pathlib import Path

import numpy as np

# FileResponse opens files through anyio.open_file, which anyio imports lazily, on first use; that
# first use would be on the server's thread, importing beside whatever the main thread imports.
# Import it here, once, with the app (under pytest, two threads importing at once can break its
# assertion rewriter: "AST constructor recursion depth mismatch" on Python 3.11).
from anyio import open_file as _open_file  # noqa: F401
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import HiggsError, LockedError, UsageError
from higgs_cli.fsutil import resolve_inside
from higgs_cli.studio import actions
from higgs_cli.studio.jobs import Jobs
from higgs_cli.studio.state import StaleError, Studio
from higgs_cli.studio.view import page_state

log = logging.getLogger("higgs.studio")
MAX_BODY = 256 * 1024
STATIC = {"studio.js": "text/javascript", "wave.js": "text/javascript", "studio.css": "text/css"}
_KEY = re.compile(r"[0-9a-f]{64}")
AUDIO_FILES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".m4b", ".aac")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; media-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint}, status_code=status, headers={"Cache-Control": "no-store"})


def _status(error: HiggsError) -> int:
    if isinstance(error, (StaleError, LockedError)):
        return 409
    if isinstance(error, UsageError):
        return 400
    return 409  # the project cannot do it as it stands (e.g. nothing rendered yet): the message says why


def _static(name: str) -> bytes:
    return resources.files("higgs_cli.studio").joinpath("static", name).read_bytes()


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit mono WAV of float samples, in memory."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes())
    return buffer.getvalue()


def build_app(studio: Studio, token: str, *, port_hosts: tuple[str, ...] = ()) -> Starlette:
    """The app for `studio`, answering only requests that carry `token`."""
    jobs = Jobs()

    def guard(request: Request) -> None:
        given = request.query_params.get("token") or request.headers.get("x-studio-token") or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise Refused(403, "this studio page needs its token: open the URL `higgs project studio` printed")
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost", "::1", *port_hosts):
            raise Refused(403, f"the studio answers only on this machine, not as {host!r}")

    async def body(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise UsageError(f"the request is {len(raw)} bytes; the studio takes at most {MAX_BODY}")
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise UsageError("the request is not JSON") from None
        if not isinstance(data, dict):
            raise UsageError("the request must be a JSON object")
        return data

    def endpoint(handler, *, write: bool = False):
        async def route(request: Request) -> Response:
            try:
                guard(request)
                if write:
                    if jobs.busy():  # its own render holds the project lock: say so, not "another process"
                        job = jobs.current or {}
                        raise LockedError(f"the studio is busy: {job.get('kind')} {job.get('what')} is running",
                                          hint="wait for it to finish (the progress is at the top of the page)")
                    data = await body(request)
                    result = await run_in_threadpool(handler, request, data)
                else:
                    result = await run_in_threadpool(handler, request)
                return result if isinstance(result, Response) else JSONResponse(
                    result, headers={"Cache-Control": "no-store"})
            except Refused as refusal:
                return _error(refusal.status, refusal.message)
            except HiggsError as error:
                return _error(_status(error), error.message, error.hint)
            except Exception as error:  # a bug: the page gets a message, the log the traceback
                log.exception("studio: %s failed", request.url.path)
                return _error(500, f"internal error ({type(error).__name__}); the studio keeps running")
        return route

    def index(request: Request) -> Response:
        page = _static("index.html").replace(b"__TOKEN__", token.encode())  # the page's own files carry it too
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                 "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            raise Refused(404, f"no such file: {name}")
        return Response(_static(name), media_type=STATIC[name], headers={"X-Content-Type-Options": "nosniff"})

    def state(request: Request) -> dict:
        shown = page_state(studio, probe_lock=not jobs.busy())  # while its own job runs, the lock is its own
        return {**shown, "job": jobs.view()}

    def key_audio(request: Request) -> Response:
        key = request.path_params["key"]
        if not _KEY.fullmatch(key):
            raise UsageError("not a line's cache key")
        from higgs_cli.project.folder.cache import open_store

        entry = open_store(studio.project()).get(key)
        if entry is None:
            raise Refused(404, "that audio is not in the project's cache (cleaned, or never rendered)")
        return Response(wav_bytes(entry.audio), media_type="audio/wav",
                        headers={"Cache-Control": "private, max-age=60"})

    def build_file(request: Request) -> Response:
        build = studio.layout.default_build
        try:
            path = resolve_inside(build, request.path_params["path"], what="file")
        except UsageError as error:
            raise Refused(403, error.message) from None
        if Path(path).suffix.lower() not in AUDIO_FILES:  # the page plays audio; a build's other files stay put
            raise Refused(403, f"the studio serves only the build's audio, not {request.path_params['path']}")
        if not Path(path).is_file():
            raise Refused(404, f"no such file in the build: {request.path_params['path']}")
        return FileResponse(path, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                                           "Content-Security-Policy": "sandbox; default-src 'none'"})

    def takes(request: Request) -> dict:
        return actions.takes_of(studio, request.query_params.get("ref", ""))

    routes = [
        Route("/", endpoint(index)),
        Route("/static/{name}", endpoint(static)),
        Route("/api/state", endpoint(state)),
        Route("/api/job", endpoint(lambda request: {"job": jobs.view()})),
        Route("/api/takes", endpoint(takes)),
        Route("/api/approve", endpoint(lambda r, d: actions.set_approval(studio, d), write=True), methods=["POST"]),
        Route("/api/pick", endpoint(lambda r, d: actions.pick_take(studio, d), write=True), methods=["POST"]),
        Route("/api/edit", endpoint(lambda r, d: actions.edit(studio, d), write=True), methods=["POST"]),
        Route("/api/restore", endpoint(lambda r, d: actions.restore(studio, d), write=True), methods=["POST"]),
        Route("/api/render", endpoint(lambda r, d: actions.start_render(studio, jobs, d), write=True),
              methods=["POST"]),
        Route("/api/takes", endpoint(lambda r, d: actions.start_takes(studio, jobs, d), write=True),
              methods=["POST"]),
        Route("/audio/key/{key}", endpoint(key_audio)),
        Route("/files/{path:path}", endpoint(build_file)),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        try:
            guard(request)
        except Refused as refusal:
            return _error(refusal.status, refusal.message)
        status = getattr(exc, "status_code", 404)
        return _error(status, "no such page" if status == 404 else "method not allowed")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
    app.state.jobs = jobs
    return app
