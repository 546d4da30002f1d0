"""A project folder read from a bucket: copied into a local working mirror, rendered there.

`higgs project render s3://bucket/show` mirrors the prefix (project.yaml and the
recordings beside it) into the higgs cache folder, one mirror per URL, so the
mirror's own render cache (`.higgs/`) makes the next render incremental. The
bucket's `build/` and `.higgs/` are not copied (outputs and caches are not
inputs). Files removed from the bucket are removed from the mirror. Keys that
would land outside the mirror (`..`, absolute) are refused.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from higgs_cli import home
from higgs_cli.errors import UsageError
from higgs_cli.fsutil import exclusive_lock
from higgs_cli.project.folder.publish import url_digest
from higgs_cli.project.layout import NOT_INPUTS, PROJECT_FILE
from higgs_cli.storage.objects import Prefix
from higgs_cli.storage.urls import StorageUrl

MAX_FILES = 5000
MAX_BYTES = 4 << 30


def mirror_dir(url: StorageUrl) -> Path:
    return home.cache_dir() / "projects" / url_digest(url)


def _relative(key: str) -> PurePosixPath | None:
    """A key as a safe relative path, or None for one that is skipped."""
    parts = PurePosixPath(key).parts
    if not parts or parts[0] in NOT_INPUTS:
        return None
    if PurePosixPath(key).is_absolute() or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise UsageError(f"the object key {key!r} would land outside the project folder",
                         hint="rename it in the bucket")
    return PurePosixPath(*parts)


def mirror_project(url: StorageUrl | str, *, source: Prefix | None = None) -> Path:
    """Bring the project at `url` into its local mirror (only what changed); return the mirror's folder."""
    src = source or Prefix(url, what="project")
    url = src.url
    src.check("reading the project at")
    listed = src.keys(action="listing the project at")
    files = {rel: meta for key, meta in listed.items() if (rel := _relative(key)) is not None}
    total = sum(size for size, _ in files.values())
    if PurePosixPath(PROJECT_FILE) not in files:
        raise UsageError(f"no {PROJECT_FILE} at {url}", hint=f"pass the prefix that holds the project's {PROJECT_FILE}")
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise UsageError(f"{url} holds {len(files)} objects ({total / 2**30:.1f} GiB): too much "
                         "for a project folder", hint="point at the project's own prefix")
    root = mirror_dir(url)
    with exclusive_lock(root.parent / f"{root.name}.lock", what=f"the local mirror of {url}"):
        root.mkdir(parents=True, exist_ok=True)
        for rel, (size, stamp) in files.items():
            local = root / rel
            # same size and copied after the object was last written: unchanged
            if (local.is_file() and local.stat().st_size == size and stamp is not None
                    and local.stat().st_mtime >= stamp):
                continue
            src.download(str(rel), local, action="reading the project at")
        keep = {root / rel for rel in files}
        for path in sorted(root.rglob("*"), reverse=True):
            rel = path.relative_to(root)
            if rel.parts[0] in NOT_INPUTS or path in keep:
                continue
            if path.is_file() or path.is_symlink():
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return root
