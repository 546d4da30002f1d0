"""`higgs serve`: keep one model warm for every command and client (OpenAI-compatible speech API).

Parses, checks the address and key before the model loads, calls `higgs_cli.server.run.serve`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from higgs_cli.cli.options import CompileOption, DeviceOption, JsonFlag, ModelOption, QuietFlag, RevisionOption
from higgs_cli.cli.output import dump_json, out
from higgs_cli.engine.request import SAMPLING_RANGES
from higgs_cli.errors import UsageError
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
        help=f"Require this key ('Authorization: Bearer KEY') on every request but /health [default: ${KEY_ENV}]. "
             "On the command line it is visible to every user of the machine (`ps`): prefer the "
             f"environment (${KEY_ENV}) or --api-key-file.")]
    = None,
    api_key_file: Annotated[Optional[Path], typer.Option(
        "--api-key-file", show_default=False, help="Read the key from this file (its first line; keep the "
        "file private, e.g. chmod 600).")] = None,
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
    allowed_host: Annotated[Optional[list[str]], typer.Option(
        "--allowed-host", show_default=False, help="Answer requests addressed to this name too (repeatable; "
        "'*' for any). By default a keyless server answers only loopback names, a keyed one any name.")] = None,
    voice_alias: Annotated[Optional[list[str]], typer.Option(
        "--voice-alias", show_default=False, help="Map an OpenAI voice name to a library voice, e.g. "
        "alloy=belinda (repeatable). Unmapped stock names are built-in described voices.")] = None,
    voices_file: Annotated[Optional[Path], typer.Option(
        "--voices-file", show_default=False, help="A file of NAME=VOICE lines, as --voice-alias.")] = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Serve the model over HTTP until Ctrl-C or SIGTERM; `higgs say` and `project render` use it."""
    from dataclasses import replace

    from higgs_cli.cli.progress import SESSION_NOTES
    from higgs_cli.server.names import check_aliases, parse_aliases
    from higgs_cli.server.run import ServeOptions, check_bind, serve
    from higgs_cli.sessions import SessionSpec, open_session
    from higgs_cli.sessions.env import api_key as env_api_key

    api_key = _read_key(api_key or (None if api_key_file else env_api_key()), api_key_file)
    limits = replace(LIMITS, max_queue=max_queue, max_seconds=max_seconds, request_timeout=request_timeout)
    options = ServeOptions(host=host, port=port, max_batch=max_batch, api_key=api_key or None,
                           cors_origins=tuple(cors_origin or ()), allowed_hosts=tuple(allowed_host or ()),
                           voice_aliases=parse_aliases(list(voice_alias or ()), voices_file), limits=limits)
    check_bind(options)  # before the model loads: a refused address should not cost that wait
    check_aliases(options.voice_aliases)

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


MAX_KEY_FILE = 4096  # a key is a line of text, not a file's worth


def _read_key(api_key: str | None, key_file: Path | None) -> str | None:
    """The key from --api-key/$HIGGS_API_KEY or from --api-key-file (its first line), checked to be text."""
    from higgs_cli.fsutil import read_capped_text
    from higgs_cli.untrusted import check_utf8

    if key_file is not None:
        if api_key:
            raise UsageError("give the key once: --api-key or --api-key-file",
                             hint="leave out one of the options")
        lines = read_capped_text(key_file, MAX_KEY_FILE, what="API key file").strip().splitlines()
        if not lines or not lines[0].strip():
            raise UsageError(f"API key file {key_file} is empty", hint="write the key on its first line")
        api_key = lines[0].strip()
    return check_utf8(api_key, "the API key") if api_key else None


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
