"""Where a project keeps things: one object owns every path under the project folder.

    <project>/project.yaml
    <project>/.higgs/cache/<key>.npz     generated lines (store.py)
    <project>/.higgs/codes/<id>.npy      project recordings as audio codes (plan.py)
    <project>/.higgs/last_render.json    the last render's state (state.py)
    <project>/.higgs/render.lock         held by every writer: render and clean
    <project>/.higgs/snapshots/          every render's outputs, for `project restore` (snapshots.py)
    <project>/.higgs/takes.json          the takes made of each line (takes.py)
    <project>/project.lock.yaml          picks and approvals, kept in git (lockfile.py)
    <project>/build/                     the default output folder (manifest.py lists its files)

Nothing here remembers an absolute path: a project folder that is copied or
moved is a fresh project at its new place.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import exclusive_lock, sweep_temporaries

HIGGS_DIR = ".higgs"
BUILD_DIR = "build"
MANIFEST = "manifest.json"


class ProjectLayout:
    """The paths of one project folder."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

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
        """The lock every writer of `.higgs/` and the build outputs holds."""
        return exclusive_lock(self.lock_file, what=what)

    def sweep(self, build: Path) -> None:
        """Remove what a render killed mid-write left behind (temporary files; never cache entries).

        Call only while holding `lock`.
        """
        for folder in (self.cache_dir, self.codes_dir, self.higgs_dir, build):
            sweep_temporaries(folder)

    def check_folders(self, build: Path, *, custom: bool) -> None:
        """Refuse to write through links planted in a project, or into a folder higgs did not make.

        A project may come from someone else: its `.higgs/` or `build/` could be a
        symbolic link to a folder of yours that a render or clean would then write
        into or delete. An --output-dir may be anywhere, but if it already holds
        files they must be an earlier render's.
        """
        from higgs_cli.project.manifest import is_manifest

        folders = [self.higgs_dir, self.cache_dir, self.codes_dir, self.higgs_dir / "snapshots",
                   self.higgs_dir / "snapshots" / "blobs"] + ([] if custom else [self.default_build])
        for folder in folders:
            if folder.is_symlink():
                raise UsageError(f"{folder} is a symbolic link (to {os.readlink(folder)}); higgs does not write or "
                                 "delete through links in a project",
                                 hint="remove the link; higgs makes the folder itself")
        if custom:
            if build.exists() and not build.is_dir():
                raise UsageError(f"--output-dir {build} is a file, not a folder")
            if build.is_dir() and any(build.iterdir()) and not is_manifest(build / MANIFEST):
                raise UsageError(f"--output-dir {build} already holds files that are not a higgs render (it has "
                                 f"no {MANIFEST}); refusing to write into it", hint="choose an empty or a new folder")

    def folder_id(self) -> str:
        """Which folder this is on disk: a copy of the project is another folder, at another path."""
        info = self.root.stat()
        return f"{self.root.resolve()}\0{info.st_dev}:{info.st_ino}"
