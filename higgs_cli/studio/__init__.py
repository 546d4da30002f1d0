"""The studio (`higgs project studio PATH`): a local web page on one project, to listen, pick, approve,
edit and render, every action through the library function its CLI command calls.

    state.py      the project folder, its session (lazy, through sessions/), project.yaml's sha256
    view.py       what the page shows: status, the text as read, the timeline, waveform peaks, snapshots
    yaml_edit.py  one line's text/scene/seed/pause changed in project.yaml, comments and layout kept
    jobs.py       the one running render or takes, with progress for the page
    actions.py    each button: approve, pick, takes, render, edit, restore
    app.py        the Starlette app: token and host guard, routes, errors as 4xx, audio, build files
    run.py        loopback socket, random token, uvicorn in a thread
    static/       the page (HTML, JS, CSS; nothing from the network)
"""

from higgs_cli.studio.run import RunningStudio, start_studio
from higgs_cli.studio.state import Studio

__all__ = ["RunningStudio", "Studio", "start_studio"]
