"""Where a project keeps things: one object owns every path under the project folder.

    <project>/project.yaml               the project (reading/load.py)
    <project>/voices/                    recordings made for the project (`project new`, `project import`)
    <project>/.higgs/cache/<key>.npz     generated lines (folder/store.py)
    <project>/.higgs/codes/<id>.npy      project recordings as audio codes (planning/plan.py)
    <project>/.higgs/last_render.json    the last render's state (folder/state.py)
    <project>/.higgs/render.lock         held by every writer: render and clean
    <project>/.higgs/snapshots/          every render's record, for `project restore` (folder/snapshots.py)
    <project>/.higgs/snapshots/blobs/    the bytes those records name, stored once by sha256
    <project>/.higgs/takes.json          the takes made of each line (folder/takes.py)
    <project>/project.lock.yaml          picks and approvals, kept in git (folder/lockfile.py)
    <project>/build/                     the default output folder (folder/manifest.py lists its files)
    <project>/build/takes/<line>/take-<k>.wav   each take of a line, to listen to (folder/takes.py)

Every room of the project layer imports this module (it imports none of them);
no other module spells these names. Nothing here remembers an absolute path: a project folder that is copied or
moved is a fresh project at its new place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import exclusive_lock, sweep_temporaries

PROJECT_FILE = "project.yaml"
LOCK_YAML = "project.lock.yaml"
VOICES_DIR = "voices"
HIGGS_DIR = ".higgs"
BUILD_DIR = "build"
MANIFEST = "manifest.json"  # in a build folder
NOT_INPUTS = (HIGGS_DIR, BUILD_DIR)  # what a copy of a project's inputs leaves out (a mirror from a bucket)
TAKES_DIR = "takes"  # in the project's build folder
_LINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(:[0-9]+)?")  # an id or a section id, and a chunk number


def line_folder(name: str) -> str:
    """A line's lock file name (`intro:2`, `walk`, `walk:2`) as one safe file name.

    ':' becomes '~', which no id holds, so two lines never share a folder; a name outside
    the id rules (a task's own) keeps its safe characters and gets a digest of itself.
    """
    if _LINE_NAME.fullmatch(name):
        return name.replace(":", "~")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:60] or "line"
    return f"{safe}~{hashlib.sha256(name.encode('utf-8')).hexdigest()[:10]}"


class ProjectLayout:
    """The paths of one project folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def project_file(self) -> Path:
        return self.root / PROJECT_FILE

    @property
    def lock_yaml(self) -> Path:
        """Picks and approvals (`project.lock.yaml`), kept beside project.yaml in git."""
        return self.root / LOCK_YAML

    @property
    def voices_dir(self) -> Path:
        return self.root / VOICES_DIR

    @property
    def higgs_dir(self) -> Path:
        """Private working files; also where temporary mixes are written (same disk as the build)."""
        return self.root / HIGGS_DIR

    @property
    def cache_dir(self) -> Path:
        return self.higgs_dir / "cache"

    @property
    def codes_dir(self) -> Path:
        return self.higgs_dir / "codes"

    @property
    def state_file(self) -> Path:
        return self.higgs_dir / "last_render.json"

    @property
    def snapshots_dir(self) -> Path:
        return self.higgs_dir / "snapshots"

    @property
    def snapshot_blobs_dir(self) -> Path:
        """Every snapshotted file's bytes, named by their sha256 (hard links to outputs where possible)."""
        return self.snapshots_dir / "blobs"

    @property
    def takes_file(self) -> Path:
        return self.higgs_dir / "takes.json"

    @property
    def takes_dir(self) -> Path:
        """The takes' audio files, beside the build: `build/takes/<line>/take-<k>.wav`."""
        return self.default_build / TAKES_DIR

    def take_audio(self, line_name: str, take: int) -> Path:
        """Where take `take` of the line named `line_name` (its lock file name) is written."""
        return self.takes_dir / line_folder(line_name) / f"take-{int(take)}.wav"

    @property
    def lock_file(self) -> Path:
        return self.higgs_dir / "render.lock"

    @property
    def default_build(self) -> Path:
        return self.root / BUILD_DIR

    def build_dir(self, out_dir: str | os.PathLike | None) -> tuple[Path, bool]:
        """The output folder of a render and whether it is a custom one (not the project's build/)."""
        build = Path(out_dir) if out_dir is not None else self.default_build
        return build, build.resolve() != self.default_build.resolve()

    def lock(self, what: str) -> AbstractContextManager[None]:
        """The lock every writer of `.higgs/` and the build outputs holds (its note says who holds it)."""
        return exclusive_lock(self.lock_file, what=what, note=True)

    @contextlib.contextmanager
    def writing(self, what: str, build: Path) -> Iterator[None]:
        """Hold `lock` and sweep what a killed writer left, before and after the work.

        The sweep after matters on Ctrl-C: an interrupt that lands between the
        moment a temporary file is made and the moment its cleanup is armed would
        otherwise leave it behind until the next command.
        """
        with self.lock(what):
            self.sweep(build)
            try:
                yield
            finally:
                self.sweep(build)

    def sweep(self, build: Path) -> None:
        """Remove what a render killed mid-write left behind (temporary files; never cache entries).

        Call only while holding `lock`.
        """
        takes = self.takes_dir  # its folders too, never through a link
        linked = self.default_build.is_symlink() or takes.is_symlink()
        lines = [f for f in takes.iterdir() if f.is_dir() and not f.is_symlink()] \
            if takes.is_dir() and not linked else []
        for folder in (self.cache_dir, self.codes_dir, self.higgs_dir, build, *lines):
            sweep_temporaries(folder)

    def check_folders(self, build: Path, *, custom: bool, is_render: Callable[[Path], bool]) -> None:
        """Refuse to write through links planted in a project, or into a folder higgs did not make.

        A project may come from someone else: its `.higgs/` or `build/` could be a
        symbolic link to a folder of yours that a render or clean would then write
        into or delete. An --output-dir may be anywhere, but if it already holds
        files they must be an earlier render's: `is_render(folder)` says so
        (`folder.manifest.is_build`, passed in: this module imports no room).
        """
        folders = [self.higgs_dir, self.cache_dir, self.codes_dir, self.snapshots_dir,
                   self.snapshot_blobs_dir] + ([] if custom else [self.default_build])
        for folder in folders:
            if folder.is_symlink():
                raise UsageError(f"{folder} is a symbolic link (to {os.readlink(folder)}); higgs does not write or "
                                 "delete through links in a project",
                                 hint="remove the link; higgs makes the folder itself")
        if custom:
            if build.exists() and not build.is_dir():
                raise UsageError(f"--output-dir {build} is a file, not a folder")
            if build.is_dir() and any(build.iterdir()) and not is_render(build):
                raise UsageError(f"--output-dir {build} already holds files that are not a higgs render (it has "
                                 f"no {MANIFEST}); refusing to write into it", hint="choose an empty or a new folder")

    def folder_id(self) -> str:
        """Which folder this is on disk: a copy of the project is another folder, at another path."""
        info = self.root.stat()
        return f"{self.root.resolve()}\0{info.st_dev}:{info.st_ino}"
