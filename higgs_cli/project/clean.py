"""`project clean`: delete a project's render cache and build outputs, and nothing else.

Only files higgs wrote are removed: the project's own `build/` folder whole,
and from a custom --output-dir (remembered by the last render of this very
folder, see state.py) only the files its manifest lists there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from higgs_cli.project.layout import MANIFEST, ProjectLayout
from higgs_cli.project.manifest import read_manifest
from higgs_cli.project.state import clear_state, read_state

if TYPE_CHECKING:
    from higgs_cli.project.model import Project


def clean_project(project: Project, *, cache: bool = True, build: bool = True, snapshots: bool = False) -> list[str]:
    """Delete the render cache and/or the build outputs (and the snapshots, only when asked: restoring
    needs nothing else); return what was removed."""
    layout = ProjectLayout(project.root)
    removed: list[str] = []
    layout.check_folders(layout.default_build, custom=False)
    with layout.lock(f"project {project.title}"):
        layout.sweep(layout.default_build)
        if cache:
            for folder in (layout.cache_dir, layout.codes_dir):
                if folder.exists():
                    shutil.rmtree(folder)
                    removed.append(str(folder))
        if build:
            last = read_state(layout)
            default = layout.default_build
            for folder in dict.fromkeys([default, last.build(layout) if last else default]):
                removed.extend(_clean_build(folder, whole=folder.resolve() == default.resolve()))
            clear_state(layout)
        if snapshots:
            from higgs_cli.project.snapshots import drop_snapshots

            removed.extend(drop_snapshots(project))
    return removed


def _clean_build(folder: Path, *, whole: bool) -> list[str]:
    if not folder.exists():
        return []
    if whole:
        shutil.rmtree(folder)
        return [str(folder)]
    manifest = read_manifest(folder)
    if manifest is None:
        return []
    removed = []
    for path in manifest.files(folder):
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(str(path))
    stems = folder / "stems"
    if stems.is_dir() and not any(stems.iterdir()):
        stems.rmdir()
    (folder / MANIFEST).unlink(missing_ok=True)
    removed.append(str(folder / MANIFEST))
    return removed
