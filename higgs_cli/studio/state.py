"""What the studio holds for one project: its folder, the session options and the one session.

The project is read from disk again for every request (another editor, git or a CLI command
may change it under the page); the session is opened once per model through the same front door
as `project render` (`sessions.open_session`, lazy: the page opens before any model loads, and a
model loads only when a line must be generated).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import HiggsError, UsageError
from higgs_cli.project import ProjectLayout, load_project
from higgs_cli.project.reading.yaml_safety import read_capped

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project
    from higgs_cli.plugins.task import Task
    from higgs_cli.sessions import Notes, SessionSpec


class StaleError(HiggsError):
    """The page acted on a project.yaml that changed on disk since it read it (HTTP 409)."""


class Studio:
    """One project folder and what is needed to render it: tasks, session options, the session."""

    def __init__(self, root: Path, *, tasks: Mapping[str, Task], spec: SessionSpec | None = None,
                 notes: Notes | None = None, batch_size: int | None = None, device: str | None = None) -> None:
        self.root = Path(root)
        self.layout = ProjectLayout(self.root)
        if not self.layout.project_file.is_file():
            raise UsageError(f"no project.yaml in {self.root}", hint="pass a project folder (`higgs project new`)")
        self.tasks = tasks
        self.spec = spec
        self.notes = notes
        self.batch_size = batch_size
        self.device = device  # where a render's speech recognition runs (the guards), as `render --device`
        self._session: Any = None
        self._session_model: object = object()  # the project `model:` the session was opened for
        self._lock = threading.Lock()

    def project_bytes(self) -> bytes:
        return read_capped(self.layout.project_file)

    def sha(self) -> str:
        """The sha256 of project.yaml as it is on disk now: what the page sends back with each write."""
        return hashlib.sha256(self.project_bytes()).hexdigest()

    def check_sha(self, seen: object) -> None:
        """Refuse a write from a page that read another project.yaml than the one on disk now."""
        if not isinstance(seen, str) or seen != self.sha():
            raise StaleError("project.yaml changed on disk since this page read it; nothing was changed",
                             hint="reload the page to see the file as it is now, then try again")

    def project(self) -> Project:
        return load_project(self.root, tasks=self.tasks)

    def session(self, project: Project) -> Any:
        """The lazy session for the project's model (opened again only when `model:` changes)."""
        from higgs_cli.sessions import open_session

        with self._lock:
            if self._session is None or self._session_model != project.model:
                self._session = open_session(self.spec, project_model=project.model, lazy=True, notes=self.notes)
                self._session_model = project.model
            return self._session

    def session_loaded(self) -> bool:
        return bool(getattr(self._session, "loaded", self._session is not None))
