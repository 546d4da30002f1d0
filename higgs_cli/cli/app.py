"""The `higgs` application: global flags, one sub-app per noun, one error handler."""

from __future__ import annotations

import functools
import json
import signal
import sys
from typing import Annotated

import typer

from higgs_cli import __version__
from higgs_cli.cli.output import out
from higgs_cli.errors import HiggsError

app = typer.Typer(
    name="higgs",
    help="Expressive speech and audio production with Higgs Audio V2.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"higgs {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    json_output: Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only results and errors.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    out.json_mode = json_output
    out.quiet = quiet
    _state["debug"] = debug


@functools.cache
def _register_nouns() -> None:
    """Attach every noun and plugin command to the app, once per process."""
    from higgs_cli.cli import model, plugins, project, say, voice

    say.register(app)
    app.add_typer(model.app, name="model", help="Download, inspect and create models.")
    app.add_typer(voice.app, name="voice", help="Manage the library of voice profiles.")
    app.add_typer(project.app, name="project", help="Create, validate and render projects.")
    app.add_typer(plugins.app, name="plugins", help="List installed task plugins.")
    from higgs_cli.plugins.manager import get_plugin_manager

    get_plugin_manager().hook.register_commands(cli=app)


def _report(error: HiggsError) -> int:
    if out.json_mode:
        sys.stdout.write(json.dumps(error.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.error(str(error))
    return error.exit_code


def _interrupted() -> int:
    """Report Ctrl-C (or SIGTERM) once, as text or, with --json, as a JSON error; return the exit code."""
    code = 128 + _state.get("signal", signal.SIGINT)
    message = "interrupted; nothing half-written was kept, and lines already rendered stay cached"
    if out.json_mode:
        sys.stdout.write(json.dumps({"error": message, "where": None, "hint": None, "exit_code": code}) + "\n")
    else:
        out.error(message)
    return code


def _terminate(signum, frame) -> None:
    """SIGTERM (`kill`, `docker stop`) unwinds like Ctrl-C, so temporary files are removed on the way out."""
    _state["signal"] = signum
    raise KeyboardInterrupt


def _interrupt_beneath(error: BaseException) -> bool:
    """Whether Ctrl-C (or SIGTERM) set off this error: code cleaning up after an interrupt
    may fail in its own way (numpy closing a half-written .npz raises ValueError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, typer.Abort)):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; known errors become one clean message and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    _state.pop("signal", None)
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        _run(args, debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: list[str], debug: bool) -> None:
    try:
        _register_nouns()
        code = app(args=args, prog_name="higgs", standalone_mode=False)
        if isinstance(code, int) and code:  # typer returns exit codes (130 for Ctrl-C) in this mode
            sys.exit(_interrupted() if code == 130 else code)
    except HiggsError as error:
        if debug:
            raise
        sys.exit(_report(error))
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except (typer.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort
        sys.exit(_interrupted())
    except Exception as error:
        if _interrupt_beneath(error):
            sys.exit(_interrupted())
        # Typer bundles its own click, so match click's exception protocol, not its class.
        if callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int):
            error.show()
            sys.exit(error.exit_code)
        if debug:
            raise
        sys.exit(_report(HiggsError(f"unexpected {type(error).__name__}: {error}",
                                    hint="run with --debug for the traceback, and please report it")))
    sys.exit(0)
