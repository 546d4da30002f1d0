"""`project clean`: delete a project's render cache and build outputs, and nothing else.

Only files higgs wrote are removed: the project's own `build/` folder whole (the takes' files with it,
and their record `.higgs/takes.json`, also when only the cache goes),
and from a custom --output-dir (remembered by the last render of this very
folder, see state.py) only the files its manifest lists there.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from higgs_cli.project.folder.manifest import is_build, read_manifest
from higgs_cli.project.folder.state import clear_state, read_state
from higgs_cli.project.layout import MANIFEST, ProjectLayout

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project


def clean_project(project: Project, *, cache: bool = True, build: bool = True, snapshots: bool = False,
                  urls: Sequence[str] = ()) -> list[str]:
    """Delete the render cache and/or the build outputs (and the snapshots, only when asked: restoring
    needs nothing else); return what was removed.

    A build the last render published to a bucket is removed there too (folder/publish.py: its
    manifest, then the objects it lists), as are the builds at `urls` (a project read from a
    bucket: its own build/ prefix). The bucket goes first: if it fails, nothing local is removed."""
    layout = ProjectLayout(project.root)
    removed: list[str] = []
    layout.check_folders(layout.default_build, custom=False, is_render=is_build)
    with layout.lock(f"project {project.title}"):
        layout.sweep(layout.default_build)
        if build:
            removed.extend(_unpublish(layout, urls))
        if cache or build:  # a take is its cache entry and its file: both go with either
            from higgs_cli.project.folder.takes import drop_takes

            removed.extend(drop_takes(layout))
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
            from higgs_cli.project.folder.snapshots import drop_snapshots

            removed.extend(drop_snapshots(project))
    return removed


def _unpublish(layout: ProjectLayout, urls: Sequence[str]) -> list[str]:
    """Remove the published builds: at `urls`, and where the last render's staging folder published."""
    last = read_state(layout)
    if not urls and last is None:
        return []  # a local project never published: storage is not even imported
    from higgs_cli.project.folder.publish import published_url, unpublish

    staged = published_url(last.build(layout)) if last is not None else None
    removed: list[str] = []
    for url in dict.fromkeys([*urls, *([str(staged)] if staged is not None else [])]):
        removed.extend(unpublish(url))
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
