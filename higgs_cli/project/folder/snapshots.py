"""Snapshots: every render's outputs, kept so `higgs project restore` writes them again byte for byte.

    <project>/.higgs/snapshots/<id>.json           what the render wrote: time, model, lines, keys,
                                                    the sha256 of every output file and of the
                                                    project.yaml and project.lock.yaml that made them
    <project>/.higgs/snapshots/blobs/<sha256>      each file's bytes, stored once by content

A blob is a hard link to the output the render wrote (a copy where links are not possible): a
build's files are replaced by rename, never rewritten in place, so the link keeps the old bytes
and an unchanged file costs no space (project.yaml and its lock file are copied: editors rewrite them
in place). Restoring needs no model and no cache entry: it copies the
blobs back, checks each sha256, and refuses (changing nothing) when one is missing or damaged;
`--with-project` also writes back project.yaml and project.lock.yaml, after keeping the current
ones (and outputs) as a snapshot.
`project clean` keeps snapshots unless given --snapshots.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import TMP_MARK, atomic_path, atomic_write_text, file_sha256, read_json, resolve_inside
from higgs_cli.project.folder.manifest import BuildManifest, is_build, read_manifest
from higgs_cli.project.layout import BUILD_DIR, LOCK_YAML, MANIFEST, PROJECT_FILE, ProjectLayout

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project


_DIGEST = re.compile(r"[0-9a-f]{64}")


def snapshots_dir(layout: ProjectLayout) -> Path:
    return layout.snapshots_dir


def _blob(layout: ProjectLayout, digest: str) -> Path:
    return layout.snapshot_blobs_dir / digest


def record_snapshot(layout: ProjectLayout, build: Path, manifest: BuildManifest, outputs: dict[str, Any], *,
                    generated: int) -> str:
    """Keep the render's outputs (listed in `outputs`, the manifest among them) and the project.yaml and
    project.lock.yaml that made them; return the snapshot's id. Call while holding the project lock."""
    paths = [Path(p) for value in outputs.values() for p in (value if isinstance(value, list) else [value])]
    return _record(layout, build, paths, manifest, generated=generated)


def _record(layout: ProjectLayout, build: Path, paths: list[Path], manifest: BuildManifest | None, *,
            generated: int, note: str | None = None) -> str:
    files: dict[str, str] = {}
    for path in paths:
        digest = file_sha256(path)
        _keep(path, _blob(layout, digest))
        files[path.relative_to(build).as_posix()] = digest
    project: dict[str, str] = {}
    for path in (layout.project_file, layout.lock_yaml):
        if path.is_file():  # copied, never linked: an editor may rewrite project.yaml in place
            digest = file_sha256(path)
            _keep(path, _blob(layout, digest), link=False)
            project[path.name] = digest
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    snapshot_id = f"{stamp}-{(files.get(MANIFEST) or project.get(PROJECT_FILE) or '0' * 6)[:6]}"
    taken, n = snapshot_id, 1
    while (snapshots_dir(layout) / f"{snapshot_id}.json").exists():  # two records in one second
        n += 1
        snapshot_id = f"{taken}-{n}"
    root, where = layout.root.resolve(), build.resolve()
    data = {"id": snapshot_id, "time": manifest.rendered_at if manifest else None, "created": time.time(),
            "model": manifest.model if manifest else None, "model_id": manifest.model_id if manifest else None,
            "lines": len(manifest.lines) if manifest else 0,
            "missing": sum(bool(m.missing) for m in manifest.lines) if manifest else 0,
            "generated": generated, "duration": manifest.duration if manifest else 0.0,
            "build_dir": where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where),
            "keys": manifest.keys if manifest else [], "files": files, "project": project}
    if note:
        data["note"] = note
    atomic_write_text(snapshots_dir(layout) / f"{snapshot_id}.json", json.dumps(data, indent=1) + "\n")
    return snapshot_id


def _keep(path: Path, blob: Path, *, link: bool = True) -> None:
    """Store `path`'s bytes as `blob` once: a hard link (no space; outputs are replaced by rename, never
    rewritten in place, so the link keeps these bytes), else a copy (another disk, links not allowed)."""
    if blob.is_file():
        if link:
            _share(path, blob)
        return
    blob.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(path, blob)  # one atomic step: the blob is there whole or not at all
            return
        except FileExistsError:
            if blob.is_file():  # stored meanwhile: the same name is the same bytes
                return
        except OSError:
            pass
    with atomic_path(blob) as tmp:
        shutil.copyfile(path, tmp)


def _share(path: Path, blob: Path) -> None:
    """Make the output `path` (the same bytes as `blob`, rewritten by this render) a link to the blob, so
    an unchanged stem costs its bytes once, not once in the build and once in the store."""
    with contextlib.suppress(OSError):
        if os.path.samefile(path, blob):
            return
        tmp = path.with_name(f".{path.name}{TMP_MARK}.{uuid.uuid4().hex}")
        try:
            os.link(blob, tmp)
            os.replace(tmp, path)  # one rename: the output never is missing or partial
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


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


def _check_blob(layout: ProjectLayout, snap: dict, rel: object, digest: object) -> Path:
    if not isinstance(rel, str) or not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise UsageError(f"snapshot {snap['id']} is damaged: {rel!r} has no sha256",
                         hint=f"remove {snapshots_dir(layout) / (snap['id'] + '.json')}")
    blob = _blob(layout, digest)
    if not blob.is_file():
        raise UsageError(f"snapshot {snap['id']} cannot be restored: the saved copy of {rel} is gone",
                         hint="`higgs project clean --snapshots` or a deleted .higgs/ removes them; nothing was "
                              "written")
    if file_sha256(blob) != digest:
        raise UsageError(f"snapshot {snap['id']} cannot be restored: the saved copy of {rel} was changed "
                         "(its sha256 differs)", hint="nothing was written")
    return blob


def restore_snapshot(project: Project, snapshot_id: str, *, out_dir: str | os.PathLike | None = None,
                     with_project: bool = False) -> dict:
    """Write the snapshot's outputs into its build folder (or `out_dir`), byte for byte; with `with_project`
    also its project.yaml and project.lock.yaml (the current state kept as a snapshot first). Return what was
    written. Every blob and place is checked first: nothing is written unless all are there and intact."""
    layout = ProjectLayout(project.root)
    snap = find_snapshot(project, snapshot_id)
    build = Path(out_dir) if out_dir is not None else _recorded_build(layout, snap, BUILD_DIR)
    build, custom = layout.build_dir(build)
    layout.check_folders(build, custom=custom, is_render=is_build)
    files: dict[str, str] = snap["files"]
    kept: dict = snap.get("project") if isinstance(snap.get("project"), dict) else {}
    if with_project and PROJECT_FILE not in kept:
        raise UsageError(f"snapshot {snap['id']} holds no project.yaml (it was recorded before snapshots kept "
                         "one)", hint="restore its outputs alone (without --with-project)")
    if not files and not with_project:
        raise UsageError(f"snapshot {snap['id']} holds no outputs, only project.yaml",
                         hint="restore it with --with-project")
    with layout.lock(f"project {project.title}"):
        # every place and every blob first: a bad one refuses the restore before anything is written
        # inside the build folder, through no link: a link planted in build/ could lead anywhere
        targets = []
        for rel, digest in sorted(files.items(), key=lambda kv: kv[0] == MANIFEST):  # the manifest last
            blob = _check_blob(layout, snap, rel, digest)
            targets.append((resolve_inside(build, rel, what=f"snapshot {snap['id']}'s file"), blob))
        project_targets = []
        if with_project:
            for name in (PROJECT_FILE, LOCK_YAML):
                where = resolve_inside(layout.root, name, what="project file")
                project_targets.append((where, _check_blob(layout, snap, name, kept[name]) if name in kept
                                        else None))
        previous = read_manifest(build)
        before = None
        if with_project:  # the current project.yaml, lock file and outputs, as a snapshot of their own
            current = [build / MANIFEST, *previous.files(build)] if previous is not None else []
            before = _record(layout, build, [p for p in current if p.is_file()], previous, generated=0,
                             note=f"before restoring {snap['id']} with its project")
        written = []
        for target, blob in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(blob, tmp)
            written.append(target)
        if previous is not None and files:  # what the build held that this snapshot did not write
            keep = {p.resolve() for p in written}
            for path in previous.files(build):
                if path.resolve() not in keep and path.is_file():
                    path.unlink()
        project_written = []
        for target, blob in project_targets:
            if blob is None:  # the project had no lock file then: no picks, no approvals
                if target.is_file():
                    target.unlink()
                continue
            with atomic_path(target) as tmp:
                shutil.copyfile(blob, tmp)
            project_written.append(str(target))
    return {"snapshot": snap["id"], "build_dir": str(build), "files": [str(p) for p in written],
            "project_files": project_written, "kept_as": before}


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
