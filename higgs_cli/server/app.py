"""The ASGI app (Starlette): health, models, metrics, OpenAI's speech endpoint and the native ones.

    app = build_app(ServerState(Scheduler(session).start(), api_key=...))

Every error, ours or Starlette's (404, 405), answers in OpenAI's JSON error
shape; an unexpected exception is a 500 of that shape and the server keeps
serving. Why Starlette and not FastAPI: see docs/server.md.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from higgs_cli import __version__
from higgs_cli.server import native, speech
from higgs_cli.server.common import ServerState, authorize
from higgs_cli.server.errors import ApiError
from higgs_cli.server.hosts import HostCheck
from higgs_cli.server.names import served_models

log = logging.getLogger("higgs.server")
Handler = Callable[[Request, ServerState], Awaitable[Response]]


def _endpoint(name: str, handler: Handler, state: ServerState):
    """The route's function: counts responses by status, turns ApiError into OpenAI's shape."""
    async def route(request: Request) -> Response:
        state.in_flight += 1
        try:
            response = await handler(request, state)
        except ApiError as error:
            response = error.response()
        except Exception as error:  # never a traceback to the client; the log has it
            log.exception("unexpected error in %s", name)
            response = ApiError(500, f"internal error ({type(error).__name__}); the server keeps serving",
                                code="internal_error").response()
        finally:
            state.in_flight -= 1
        state.responses[(name, response.status_code)] += 1
        return response

    return route


async def health(request: Request, state: ServerState) -> Response:
    """Liveness for load balancers and `higgs` discovery: no key needed, nothing secret."""
    return JSONResponse({"status": "draining" if state.draining else "ok", "version": __version__})


def _model_entry(name: str, state: ServerState) -> dict:
    return {"id": name, "object": "model", "created": int(state.started), "owned_by": "higgs"}


async def models(request: Request, state: ServerState) -> Response:
    """The one served model under every name clients send (names.py)."""
    authorize(request, state)
    return JSONResponse({"object": "list", "data": [_model_entry(name, state)
                                                    for name in served_models(state.session)]})


async def model(request: Request, state: ServerState) -> Response:
    authorize(request, state)
    name = request.path_params["name"]
    if name not in served_models(state.session):
        raise ApiError(404, f"model '{name}' is not served here; this server serves '{state.session.name}'",
                       param="model", code="model_not_found")
    return JSONResponse(_model_entry(name, state))


async def metrics(request: Request, state: ServerState) -> Response:
    """Prometheus text: responses by endpoint and status, the queue, busy slots, frames per second."""
    authorize(request, state)
    stats = state.scheduler.stats()
    lines = ["# HELP higgs_requests_total HTTP responses by endpoint and status.",
             "# TYPE higgs_requests_total counter"]
    for (endpoint, status), count in sorted(state.responses.items()):
        lines.append(f'higgs_requests_total{{endpoint="{endpoint}",status="{status}"}} {count}')
    gauges = [("higgs_generations_total", "counter", "Generation requests the scheduler accepted.",
               stats["requests_total"]),
              ("higgs_frames_total", "counter", "Audio frames generated (25 a second of audio).",
               stats["frames_total"]),
              ("higgs_cancelled_total", "counter", "Generations stopped early (client gone, shutdown).",
               stats["cancelled_total"]),
              ("higgs_queue_length", "gauge", "Requests waiting for a slot.", stats["queue_length"]),
              ("higgs_busy_slots", "gauge", "Batch slots generating now.", stats["busy_slots"]),
              ("higgs_slots", "gauge", "Batch slots (--max-batch).", stats["slots"]),
              ("higgs_frames_per_second", "gauge", "Frames generated per second over the last 10 s.",
               round(stats["frames_per_second"], 3)),
              ("higgs_requests_in_flight", "gauge", "HTTP requests being answered.", state.in_flight)]
    for name, kind, text, value in gauges:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/health", health),
    ("GET", "/v1/models", models),
    ("GET", "/v1/models/{name:path}", model),
    ("GET", "/metrics", metrics),
    ("POST", "/v1/audio/speech", speech.speech),
    ("GET", "/higgs/v1/info", native.info),
    ("POST", "/higgs/v1/generate", native.generate),
    ("POST", "/higgs/v1/stream", native.stream),
    ("POST", "/higgs/v1/encode", native.encode),
    ("POST", "/higgs/v1/decode", native.decode),
]


def build_app(state: ServerState, *, cors_origins: Sequence[str] = ()) -> Starlette:
    """The app over one state; CORS only for the origins asked for (none by default)."""
    routes = [Route(path, _endpoint(path, handler, state), methods=[method]) for method, path, handler in ROUTES]

    async def http_error(request: Request, error: HTTPException) -> Response:
        message = {404: f"no endpoint {request.url.path}", 405: f"{request.method} is not allowed on "
                   f"{request.url.path}"}.get(error.status_code, str(error.detail))
        state.responses[("other", error.status_code)] += 1
        return ApiError(error.status_code, message, code="not_found" if error.status_code == 404 else None).response()

    middleware = []
    if state.allowed_hosts is not None:  # outermost: a page under a foreign name gets nothing else
        def refused() -> None:
            state.responses[("other", 403)] += 1

        middleware.append(Middleware(HostCheck, allowed=state.allowed_hosts, on_refused=refused))
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type", "X-API-Key"]))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    app.state.higgs = state
    return app
