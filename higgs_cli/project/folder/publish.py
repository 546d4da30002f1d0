"""Publishing a build to a bucket: every output object first, the manifest last.

A render with `--output-dir s3://bucket/prefix` writes into a local staging
folder (under the higgs cache folder, one per URL, so a later render there is
incremental like a local one), then `publish_build` uploads it. A reader that
finds the manifest finds every object it lists: the old manifest is removed
before any object is replaced, and the new one is written after all of them.
Objects the old manifest listed and the new build lacks are removed after.
Nothing else under the prefix is touched.

Beside each staging folder a note names its URL (`<folder>.url`), so that
`project clean` and `project status`, which find the build through the last
render's state (a local folder), know where it was published. `unpublish`
removes a published build the same way round: the manifest first, then the
objects it lists, nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from higgs_cli import home
from higgs_cli.errors import HiggsError
from higgs_cli.fsutil import TMP_MARK
from higgs_cli.project.layout import MANIFEST
from higgs_cli.storage.objects import Prefix
from higgs_cli.storage.urls import StorageUrl, parse_url


def url_digest(url: StorageUrl) -> str:
    return hashlib.sha256(str(url).encode("utf-8")).hexdigest()[:20]


def staging_dir(url: StorageUrl | str) -> Path:
    """The local folder a render for `url` is built in before it is published."""
    url = url if isinstance(url, StorageUrl) else parse_url(url, what="--output-dir")
    return home.cache_dir() / "outputs" / url_digest(url)


def _note(folder: Path) -> Path:
    return folder.with_name(folder.name + ".url")


def stage(url: StorageUrl) -> Path:
    """The staging folder for `url`, its parent made and the note naming its URL written."""
    from higgs_cli.fsutil import atomic_write_text

    folder = staging_dir(url)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not _note(folder).is_file():
        atomic_write_text(_note(folder), f"{url}\n")
    return folder


def published_url(folder: str | Path) -> StorageUrl | None:
    """The URL the staging folder `folder` publishes to; None for any other folder (or a staging
    folder from before the notes, whose URL cannot be told from its name)."""
    folder = Path(folder)
    outputs = home.cache_dir() / "outputs"
    try:
        if folder.resolve().parent != outputs.resolve():
            return None
        text = _note(folder).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    url = parse_url(text, what=f"the note {_note(folder)}")
    return url if staging_dir(url).name == folder.name else None  # a note that does not match its folder: ignored


@dataclass
class Published:
    url: str
    objects: list[str] = field(default_factory=list)  # keys written, relative to the prefix, manifest last
    removed: list[str] = field(default_factory=list)  # keys of the previous build no longer in it

    def to_dict(self) -> dict:
        return {"url": self.url, "objects": self.objects, "removed": self.removed}


def _listed(manifest: dict) -> set[str]:
    """Relative paths a manifest's `outputs` names (any nesting), those that stay inside the prefix."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, str):
            parts = PurePosixPath(value).parts
            if parts and not PurePosixPath(value).is_absolute() and ".." not in parts:
                found.add(str(PurePosixPath(*parts)))
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(manifest.get("outputs", {}))
    return found


def publish_build(build: str | Path, url: StorageUrl | str, *, target: Prefix | None = None) -> Published:
    """Upload the files of a finished local build to `url`, the manifest last."""
    build = Path(build)
    dest = target or Prefix(url, what="--output-dir")
    files = sorted(p for p in build.rglob("*") if p.is_file() and TMP_MARK not in p.name)
    names = {p.relative_to(build).as_posix(): p for p in files}
    if MANIFEST not in names:
        raise HiggsError(f"{build} has no {MANIFEST}: it is not a finished build, nothing was published")
    dest.check("publishing to")
    old_text = dest.read(MANIFEST, action="reading the previous build's manifest at")
    old: set[str] = set()
    if old_text is not None:
        try:
            old = _listed(json.loads(old_text))
        except (ValueError, AttributeError):
            old = set()  # not a manifest of ours: remove nothing it names
        dest.delete(MANIFEST, action="replacing the previous build at")  # no reader may pair it with new objects
    report = Published(url=str(dest.url))
    for name, path in names.items():
        if name != MANIFEST:
            dest.upload(name, path, action="publishing")
            report.objects.append(name)
    dest.upload(MANIFEST, names[MANIFEST], action="publishing")
    report.objects.append(MANIFEST)
    for name in sorted(old - set(names)):
        dest.delete(name, action="removing an output of the previous build at")
        report.removed.append(name)
    return report


def unpublish(url: StorageUrl | str, *, target: Prefix | None = None) -> list[str]:
    """Remove the build published at `url`: its manifest first (no reader finds it with objects
    gone), then the objects it lists; nothing else under the prefix. The URLs removed."""
    dest = target or Prefix(url, what="build")
    dest.check("removing the build at")
    text = dest.read(MANIFEST, action="reading the build's manifest at")
    if text is None:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    ours = isinstance(data, dict) and isinstance(data.get("lines"), list) and isinstance(data.get("model_id"), str)
    if not ours:
        return []  # not a manifest of ours (read_manifest's test): remove nothing
    names = sorted(_listed(data) - {MANIFEST})
    # one listing rather than a request per object; capped, so a build under a crowded prefix costs no more
    present, complete = dest.listing(max_pages=max(1, len(names)), action="listing the build at")
    dest.delete(MANIFEST, action="removing the build at")
    removed = [str(dest.url.child(MANIFEST))]
    for name in names:
        if name in present or (not complete and dest.exists(name)):
            dest.delete(name, action="removing an output of the build at")
            removed.append(str(dest.url.child(name)))
    return removed
