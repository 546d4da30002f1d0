"""Snapshots: every render's outputs, kept so `higgs project restore` writes them again byte for byte.

    <project>/.higgs/snapshots/<id>.json           what the render wrote: time, model, lines, keys,
                                                    and the sha256 of every output file
    <project>/.higgs/snapshots/blobs/<sha256>      each output's bytes, stored once by content

A blob is a hard link to the output the render wrote (a copy where links are not possible): a
build's files are replaced by rename, never rewritten in place, so the link keeps the old bytes
and an unchanged file costs no space. Restoring needs no model and no cache entry: it copies the
blobs back, checks each sha256, and refuses (changing nothing) when one is missing or damaged.
`project clean` keeps snapshots unless given --snapshots.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import atomic_path, atomic_write_text, file_sha256, read_json, resolve_inside
from higgs_cli.project.folder.manifest import BuildManifest, is_build, read_manifest
from higgs_cli.project.layout import BUILD_DIR, MANIFEST, ProjectLayout

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project


_DIGEST = re.compile(r"[0-9a-f]{64}")


def snapshots_dir(layout: ProjectLayout) -> Path:
    return layout.snapshots_dir


def _blob(layout: ProjectLayout, digest: str) -> Path:
    return snapshots_dir(layout) / "blobs" / digest


def record_snapshot(layout: ProjectLayout, build: Path, manifest: BuildManifest, outputs: dict[str, Any], *,
                    generated: int) -> str:
    """Keep the render's outputs (listed in `outputs`, the manifest among them); return the snapshot's id."""
    files: dict[str, str] = {}
    for value in outputs.values():
        for path in value if isinstance(value, list) else [value]:
            path = Path(path)
            digest = file_sha256(path)
            _keep(path, _blob(layout, digest))
            files[path.relative_to(build).as_posix()] = digest
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    snapshot_id = f"{stamp}-{files.get(MANIFEST, '0' * 6)[:6]}"
    root, where = layout.root.resolve(), build.resolve()
    data = {"id": snapshot_id, "time": manifest.rendered_at, "created": time.time(), "model": manifest.model,
            "model_id": manifest.model_id,
            "lines": len(manifest.lines), "missing": sum(bool(m.missing) for m in manifest.lines),
            "generated": generated, "duration": manifest.duration,
            "build_dir": where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where),
            "keys": manifest.keys, "files": files}
    atomic_write_text(snapshots_dir(layout) / f"{snapshot_id}.json", json.dumps(data, indent=1) + "\n")
    return snapshot_id


def _keep(path: Path, blob: Path) -> None:
    if blob.is_file():
        return
    blob.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(blob) as tmp:
        try:
            os.link(path, tmp)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copyfile(path, tmp)


def list_snapshots(project: Project) -> list[dict]:
    """Every snapshot of the project, oldest first (unreadable ones are skipped)."""
    folder = snapshots_dir(ProjectLayout(project.root))
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = read_json(path)
        if data is not None and isinstance(data.get("files"), dict) and data.get("id") == path.stem:
            found.append(data)
    return sorted(found, key=lambda d: (d.get("created") if isinstance(d.get("created"), (int, float)) else 0,
                                        d["id"]))


def find_snapshot(project: Project, snapshot_id: str) -> dict:
    """The snapshot `snapshot_id` names (its id, or a prefix of one id; "latest" for the newest)."""
    snaps = list_snapshots(project)
    if not snaps:
        raise UsageError(f"{project.title} has no snapshots yet", hint="every `higgs project render` records one")
    if snapshot_id == "latest":
        return snaps[-1]
    matches = [s for s in snaps if s["id"] == snapshot_id] or [s for s in snaps if s["id"].startswith(snapshot_id)]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(s["id"] for s in snaps[-5:])
    what = "matches several snapshots" if matches else "is not a snapshot of this project"
    raise UsageError(f"'{snapshot_id}' {what}", hint=f"`higgs project snapshots` lists them; the newest: {shown}")


def restore_snapshot(project: Project, snapshot_id: str, *, out_dir: str | os.PathLike | None = None) -> dict:
    """Write the snapshot's outputs into its build folder (or `out_dir`), byte for byte; return what was
    written. Every blob is checked first: nothing is written unless all are there and intact."""
    layout = ProjectLayout(project.root)
    snap = find_snapshot(project, snapshot_id)
    build = Path(out_dir) if out_dir is not None else _recorded_build(layout, snap, BUILD_DIR)
    build, custom = layout.build_dir(build)
    layout.check_folders(build, custom=custom, is_render=is_build)
    files: dict[str, str] = snap["files"]
    with layout.lock(f"project {project.title}"):
        targets = {}
        for rel, digest in files.items():
            if not isinstance(rel, str) or not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
                raise UsageError(f"snapshot {snap['id']} is damaged: {rel!r} has no sha256",
                                 hint=f"remove {snapshots_dir(layout) / (snap['id'] + '.json')}")
            # inside the build folder, through no link: a link planted in build/ could lead anywhere
            targets[rel] = resolve_inside(build, rel, what=f"snapshot {snap['id']}'s file")
            blob = _blob(layout, digest)
            if not blob.is_file():
                raise UsageError(f"snapshot {snap['id']} cannot be restored: the saved copy of {rel} is gone",
                                 hint="`higgs project clean --snapshots` or a deleted .higgs/ removes them")
            if file_sha256(blob) != digest:
                raise UsageError(f"snapshot {snap['id']} cannot be restored: the saved copy of {rel} was changed "
                                 "(its sha256 differs)", hint="nothing was written")
        previous = read_manifest(build)
        written = []
        for rel, digest in sorted(files.items(), key=lambda kv: kv[0] == MANIFEST):  # the manifest last
            target = targets[rel]
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(_blob(layout, digest), tmp)
            written.append(target)
        if previous is not None:  # what the build held that this snapshot did not write
            keep = {p.resolve() for p in written}
            for path in previous.files(build):
                if path.resolve() not in keep and path.is_file():
                    path.unlink()
    return {"snapshot": snap["id"], "build_dir": str(build), "files": [str(p) for p in written]}


def _recorded_build(layout: ProjectLayout, snap: dict, default: str) -> Path:
    """The build folder a snapshot records, which must lie inside the project.

    The snapshot file is the project's, so it may come from someone else: an
    absolute path or `..` there would make restore write wherever it says. A
    render to an --output-dir outside the project is restored with --output-dir.
    """
    recorded = snap.get("build_dir", default)
    if not isinstance(recorded, str):
        raise UsageError(f"snapshot {snap['id']} is damaged: its build_dir is not a path")
    try:
        return resolve_inside(layout.root, recorded, what=f"snapshot {snap['id']}'s build folder")
    except UsageError as error:
        raise UsageError(f"{error.message}; restore writes only inside the project unless you name the folder",
                         hint=f"give the folder yourself: higgs project restore {layout.root} {snap['id']} "
                              "--output-dir DIR") from None


def drop_snapshots(project: Project) -> list[str]:
    """Delete every snapshot (for `project clean --snapshots`); return what was removed."""
    folder = snapshots_dir(ProjectLayout(project.root))
    if not folder.exists():
        return []
    shutil.rmtree(folder)
    return [str(folder)]
