"""`higgs project studio PATH`: a local web page on a project (higgs_cli/studio/).

Registered when cli/app.py imports this module. It parses the session options `project render`
takes, starts the studio on loopback with a random token, prints the URL (as JSON with --json),
opens a browser unless --no-open, and serves until Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from higgs_cli.cli.options import (
    BatchSizeOption,
    CompileOption,
    DeviceOption,
    JsonFlag,
    ModelOption,
    NoServerFlag,
    QuietFlag,
    RayOption,
    RevisionOption,
    ServerOption,
    WorkersOption,
)
from higgs_cli.cli.output import out
from higgs_cli.cli.project import ProjectPath, app
from higgs_cli.engine.api import DEFAULT_BATCH_SIZE


@app.command()
def studio(
    path: ProjectPath = Path("."),
    port: Annotated[int, typer.Option("--port", help="Listen on this port of 127.0.0.1 (0: a free one).")] = 0,
    no_open: Annotated[bool, typer.Option("--no-open", help="Print the URL but open no browser.")] = False,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    compile_: CompileOption = False,
    ray: RayOption = None,
    workers: WorkersOption = None,
    server: ServerOption = None,
    no_server: NoServerFlag = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Open a local page to listen, pick takes, approve, edit and render (loopback, a token in the URL)."""
    from higgs_cli.cli.progress import SESSION_NOTES
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project import find_project_file
    from higgs_cli.sessions import SessionSpec
    from higgs_cli.studio import Studio, start_studio

    spec = SessionSpec(model=model, revision=revision, device=device, compile=compile_, server=server,
                       no_server=no_server, ray=ray, workers=workers)  # bad options refused before anything loads
    root = find_project_file(path).parent
    studio_ = Studio(root, tasks=get_tasks(), spec=spec, notes=SESSION_NOTES, batch_size=batch_size,
                     device=device)
    studio_.project()  # a project that does not load is reported here, not on the page
    running = start_studio(studio_, port=port)
    out.result({"url": running.url, "port": running.port, "project": str(root)},
               lambda console: console.print(f"studio for {root} at\n  {running.url}\n(Ctrl-C stops it)",
                                             highlight=False, soft_wrap=True))
    sys.stdout.flush()  # the URL now, to a pipe too (a script waits for it while the studio serves)
    if not no_open:
        import webbrowser

        webbrowser.open(running.url)
    running.wait()
