"""The `higgs` application: global flags, one sub-app per noun, one error handler."""

from __future__ import annotations

import json
import signal
import sys
from typing import Annotated

import typer

from higgs_cli import __version__
from higgs_cli.cli.factory import make_app
from higgs_cli.cli.options import JsonFlag, QuietFlag
from higgs_cli.cli.output import out
from higgs_cli.errors import EXIT_USAGE, HiggsError

app = make_app("higgs", help="Expressive speech and audio production with Higgs Audio V2.")

_state: dict = {}


def _version(value: bool) -> None:
    if value:
        # --version is eager (it runs before --json is parsed): the arguments main() got are read
        as_json = "--json" in _leading_flags(_state.get("args", []))
        typer.echo(json.dumps({"version": __version__}) if as_json else f"higgs {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
    debug: Annotated[bool, typer.Option("--debug", expose_value=False,
                                        help="Show tracebacks for errors.")] = False,  # read by main()
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Global flags; the help text is the app's."""


SELF_CONTAINED = ("say", "serve")  # nouns that need neither the other nouns nor any plugin
_registered: set[str] = set()


def _register_nouns(args: list[str] | None = None) -> None:
    """Attach nouns and plugin commands to the app, each once per process.

    For `say` and `serve` only that noun: the rest (the project layer, the plugins and their entry
    points) is about a quarter of a second of imports, which a `higgs say` against a warm server
    would otherwise pay on every line. Anything else, `--help` included, gets everything.
    """
    word = _command_word(args) if args is not None else None
    wanted = [word] if word in SELF_CONTAINED else ["say", "serve", "nouns", "plugins"]
    for part in wanted:
        if part not in _registered:
            _registered.add(part)
            _REGISTER[part]()


def _register_say() -> None:
    from higgs_cli.cli import say

    say.register(app)


def _register_serve() -> None:
    from higgs_cli.cli import serve

    serve.register(app)


def _register_other_nouns() -> None:
    # the order of registration is the order `higgs project --help` lists the commands in
    # isort: off
    import higgs_cli.cli.project_edit  # noqa: F401  (adds takes, pick, approve, unapprove, snapshots, restore)
    import higgs_cli.cli.project_check  # noqa: F401  (adds `project check` to the project app)
    import higgs_cli.cli.project_import  # noqa: F401  (adds `project import` to the project app)
    import higgs_cli.cli.project_studio  # noqa: F401  (adds `project studio` to the project app)
    import higgs_cli.cli.voice_train  # noqa: F401  (adds `voice train` and `voice merge` to the voice app)
    # isort: on

    from higgs_cli.cli import model, plugins, project, voice

    for noun in (model, voice, project, plugins):
        app.add_typer(noun.app)


def _register_plugin_commands() -> None:
    from higgs_cli.plugins.manager import register_commands

    register_commands(app)  # a plugin whose hook fails is skipped and reported, not fatal


_REGISTER = {"say": _register_say, "serve": _register_serve, "nouns": _register_other_nouns,
             "plugins": _register_plugin_commands}


def _command_word(args: list[str]) -> str | None:
    """The first word after the global flags (the noun), if any."""
    for arg in args:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def _report_plugin_failures() -> None:
    """Say once, on stderr, which plugins are broken and were skipped (when plugins were loaded)."""
    if "plugins" not in _registered:
        return
    from higgs_cli.plugins.manager import get_plugin_manager

    for failure in get_plugin_manager().untold_failures():
        out.warn(failure.message)


def _leading_flags(args: list[str]) -> set[str]:
    """The global flags given before the command (the root takes flags only, no values)."""
    flags = set()
    for arg in args:
        if arg == "--" or not arg.startswith("-"):
            break
        flags.add(arg)
    return flags


def _asked_for_json(args: list[str]) -> bool:
    """Whether --json was on the command line, for an error click raised before reading it."""
    options = args[:args.index("--")] if "--" in args else args
    return out.json_mode or "--json" in options


def _write_json_error(message: str, code: int, hint: str | None = None) -> None:
    sys.stdout.write(json.dumps({"error": message, "where": None, "hint": hint, "exit_code": code},
                                ensure_ascii=False) + "\n")


def _report(error: HiggsError) -> int:
    if out.json_mode:
        data = error.to_dict()
        warnings = out.take_warnings()
        if warnings:
            data["warnings"] = warnings
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        out.error(str(error))
    return error.exit_code


def _interrupted() -> int:
    """Report Ctrl-C (or SIGTERM) once, as text or, with --json, as a JSON error; return the exit code."""
    code = 128 + _state.get("signal", signal.SIGINT)
    message = "interrupted; nothing half-written was kept, and lines already rendered stay cached"
    if out.json_mode:
        _write_json_error(message, code)
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


def _click_usage_error(error: Exception, args: list[str]) -> int:
    """Report an error click raised (an unknown option, a bad value): click's text, or the JSON error."""
    code = error.exit_code
    if not _asked_for_json(args):
        error.show()
        return code
    ctx = getattr(error, "ctx", None)
    command = getattr(ctx, "command_path", None) or "higgs"
    if type(error).__name__ == "NoArgsIsHelpError":  # a bare noun: its message is the whole help text
        message = f"`{command}` needs a command or arguments"
    else:
        message = error.format_message() if callable(getattr(error, "format_message", None)) else str(error)
    _write_json_error(message, code, hint=f"see `{command} --help`" if code == EXIT_USAGE else None)
    return code


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; known errors become one clean message and an exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in _leading_flags(args)  # not a TEXT that reads "--debug"
    out.reset()
    _state.pop("signal", None)
    _state["args"] = args
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
        _register_nouns(args)
        _report_plugin_failures()
        try:
            code = app(args=args, prog_name="higgs", standalone_mode=False)
        finally:
            _report_plugin_failures()  # checkers (the check_line hook) that broke during the command
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
            sys.exit(_click_usage_error(error, args))
        if debug:
            raise
        sys.exit(_report(HiggsError(f"unexpected {type(error).__name__}: {error}",
                                    hint="run with --debug for the traceback, and please report it")))
    sys.exit(0)
