"""`higgs serve`: keep one model warm for every command and client (OpenAI-compatible speech API).

Parses, checks the address and key before the model loads, calls `higgs_cli.server.run.serve`.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from higgs_cli.cli.options import CompileOption, DeviceOption, JsonFlag, ModelOption, QuietFlag, RevisionOption
from higgs_cli.cli.output import dump_json, out
from higgs_cli.engine.request import SAMPLING_RANGES
from higgs_cli.server.limits import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SLOTS, Limits
from higgs_cli.sessions.env import KEY_ENV

LIMITS = Limits()  # every default below is the server's own (server/limits.py): one source each


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but loopback needs "
                                      "--api-key.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0 picks a free one).")] = DEFAULT_PORT,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    compile_: CompileOption = False,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Requests generated together "
                                           "(batch slots; more is faster, uses more memory).")] = DEFAULT_SLOTS,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", show_default=False,
        help=f"Require this key ('Authorization: Bearer KEY') on every request but /health [default: ${KEY_ENV}].")]
    = None,
    max_queue: Annotated[int, typer.Option("--max-queue", min=1, help="Requests that may wait for a slot; "
                                           "more are answered 429 with Retry-After.")] = LIMITS.max_queue,
    max_seconds: Annotated[float, typer.Option("--max-seconds", min=1, max=SAMPLING_RANGES["max_seconds"].high,
                                               help="The longest audio one request may ask for.")]
    = LIMITS.max_seconds,
    request_timeout: Annotated[float, typer.Option("--request-timeout", min=1, help="Seconds a request may "
                                                   "take before it is cancelled (504).")] = LIMITS.request_timeout,
    cors_origin: Annotated[Optional[list[str]], typer.Option(
        "--cors-origin", show_default=False, help="Allow browser pages from this origin (repeatable); "
                                                  "no CORS by default.")] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Serve the model over HTTP until Ctrl-C or SIGTERM; `higgs say` and `project render` use it."""
    from dataclasses import replace

    from higgs_cli.cli.progress import SESSION_NOTES
    from higgs_cli.server.run import ServeOptions, check_bind, serve
    from higgs_cli.sessions import SessionSpec, open_session
    from higgs_cli.sessions.env import api_key as env_api_key

    api_key = api_key or env_api_key()
    limits = replace(LIMITS, max_queue=max_queue, max_seconds=max_seconds, request_timeout=request_timeout)
    options = ServeOptions(host=host, port=port, max_batch=max_batch, api_key=api_key or None,
                           cors_origins=tuple(cors_origin or ()), limits=limits)
    check_bind(options)  # before the model loads: a refused address should not cost that wait

    def load():
        spec = SessionSpec(model=model, revision=revision, device=device, compile=compile_, no_server=True)
        session = open_session(spec, notes=SESSION_NOTES)  # this process serves: never another server
        if session.is_random:
            out.random_weights()
        session.warm_up()  # a compiled step is built before the first request, not during it
        return session

    def ready(url: str, session) -> None:
        data = {"url": url, "model": session.name, "pid": os.getpid(), "slots": max_batch,
                "api_key_required": bool(api_key)}
        if out.json_mode:  # one line: a supervisor (or a test) reads it as the server's ready signal
            sys.stdout.write(dump_json(data, indent=None) + "\n")
        else:
            out.result(data, lambda console: console.print(
                f"serving {session.name} at {url} ({max_batch} slots); OpenAI speech API at {url}/v1/audio/speech;"
                " Ctrl-C stops", highlight=False))
        sys.stdout.flush()

    serve(load, options, on_ready=ready)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
