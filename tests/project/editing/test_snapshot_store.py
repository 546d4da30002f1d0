"""Snapshots share bytes (issue 32.5): identical outputs are stored once, the store grows per render
by what changed, ids are listed in full, and `restore --with-project` brings back project.yaml and
its lock file. A FakeSession stands in for the model."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from test_edit_loop import run_json, write


def store_bytes(project: Path, *, build: bool = False) -> int:
    """What the snapshot store (and the build) takes on disk: each file once, however many names it has."""
    seen, total = set(), 0
    folders = [project / ".higgs" / "snapshots"] + ([project / "build"] if build else [])
    for path in (p for folder in folders for p in folder.rglob("*")):
        info = path.stat()
        if path.is_file() and (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            total += info.st_size
    return total


def build_files(project: Path) -> dict[str, tuple[str, int]]:
    build = project / "build"
    return {p.relative_to(build).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size)
            for p in sorted(build.rglob("*")) if p.is_file()}


def test_the_store_grows_per_render_by_what_changed_and_restore_is_byte_identical(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    first = run_json(cli, "render", show)
    snaps, builds, sizes = [first["snapshot"]], [build_files(show)], [store_bytes(show)]
    whole = sum(size for _, size in builds[0].values())
    assert sizes[0] <= whole + 16384  # the first snapshot is the build itself, linked
    for n in range(1, 6):
        write(show, first=f"Version {n} of the first line, Nguyen.")
        summary = run_json(cli, "render", show)
        assert summary["generated"] == 1
        snaps.append(summary["snapshot"])
        builds.append(build_files(show))
        sizes.append(store_bytes(show))
        changed = {rel: size for rel, (digest, size) in builds[-1].items() if builds[-2].get(rel, ("",))[0] != digest}
        audio = sorted(rel for rel in changed if rel.startswith("stems/"))
        assert audio == ["stems/intro_001_alice.wav"], changed
        grown = sizes[-1] - sizes[-2]
        # one stem, the master(s), the manifest and pages: what changed, plus project.yaml and the record
        assert grown <= sum(changed.values()) + 16384, (grown, changed)
        assert grown < whole  # a copy of the whole build would be at least `whole`
    # the build's files are the newest snapshot's blobs: together they take no more than the store alone
    together = store_bytes(show, build=True)
    assert together == sizes[-1]
    # restore is byte for byte, for an old snapshot and the newest
    for index in (0, 3, len(snaps) - 1):
        run_json(cli, "restore", show, snaps[index])
        assert build_files(show) == builds[index]
    print(f"build {whole} B; store after each render: {sizes}; store and build: {together}; "
          f"last changed: {changed}")


def test_a_blob_is_a_link_to_the_output_not_a_copy(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    run_json(cli, "render", show)
    master = next((show / "build").glob("*.wav"), None) or next((show / "build").rglob("*.wav"))
    digest = hashlib.sha256(master.read_bytes()).hexdigest()
    blob = show / ".higgs" / "snapshots" / "blobs" / digest
    assert os.path.samefile(blob, master)


def test_snapshots_lists_ids_in_full_at_80_columns_and_in_json(cli, fake_model, tmp_path, monkeypatch):
    show = write(tmp_path / "show")
    ids = [run_json(cli, "render", show)["snapshot"]]
    write(show, first="Another first line, Nguyen.")
    ids.append(run_json(cli, "render", show)["snapshot"])
    monkeypatch.setenv("COLUMNS", "80")
    shown = cli("project", "snapshots", show)
    assert shown.exit_code == 0, shown.output
    for snapshot_id in ids:
        assert snapshot_id in shown.stdout, shown.stdout
    listed = run_json(cli, "snapshots", show)["snapshots"]
    assert [s["id"] for s in listed] == ids
    assert listed[0]["project_files"] == ["project.yaml"]


def test_restore_with_project_brings_back_project_yaml_and_lock_and_keeps_the_current_ones(cli, fake_model,
                                                                                          tmp_path):
    show = write(tmp_path / "show")
    first = run_json(cli, "render", show)
    old_yaml = (show / "project.yaml").read_bytes()
    write(show, first="A second first line, Nguyen.")
    run_json(cli, "pick", show, "talk:2", "0")
    run_json(cli, "approve", show, "intro:2")
    run_json(cli, "render", show)
    new_yaml, new_lock = (show / "project.yaml").read_bytes(), (show / "project.lock.yaml").read_bytes()
    # without --with-project only the outputs come back
    run_json(cli, "restore", show, first["snapshot"])
    assert (show / "project.yaml").read_bytes() == new_yaml
    restored = run_json(cli, "restore", show, first["snapshot"], "--with-project")
    assert (show / "project.yaml").read_bytes() == old_yaml
    assert not (show / "project.lock.yaml").exists()  # the first render had no picks or approvals
    assert restored["kept_as"] and restored["project_files"] == [str(show / "project.yaml")]
    # the state before the restore is a snapshot of its own: restoring it brings the edits back
    run_json(cli, "restore", show, restored["kept_as"], "--with-project")
    assert (show / "project.yaml").read_bytes() == new_yaml
    assert (show / "project.lock.yaml").read_bytes() == new_lock


def test_restore_with_project_refuses_an_old_snapshot_without_project_files(cli, fake_model, tmp_path):
    show = write(tmp_path / "show")
    first = run_json(cli, "render", show)
    record = show / ".higgs" / "snapshots" / f"{first['snapshot']}.json"
    data = json.loads(record.read_text())
    del data["project"]
    record.write_text(json.dumps(data))
    before = (show / "project.yaml").read_bytes()
    result = cli("project", "restore", show, first["snapshot"], "--with-project")
    assert result.exit_code == 2 and "holds no project.yaml" in result.output and "Traceback" not in result.output
    assert (show / "project.yaml").read_bytes() == before


@pytest.mark.parametrize("rel", ["../outside.wav", "/tmp/elsewhere.wav"])
def test_restore_never_writes_outside_the_build(cli, fake_model, tmp_path, rel):
    show = write(tmp_path / "show")
    first = run_json(cli, "render", show)
    record = show / ".higgs" / "snapshots" / f"{first['snapshot']}.json"
    data = json.loads(record.read_text())
    data["files"][rel] = next(iter(data["files"].values()))
    record.write_text(json.dumps(data))
    result = cli("project", "restore", show, first["snapshot"])
    assert result.exit_code == 2 and "is not inside" in result.output
    assert not (tmp_path / "show" / "outside.wav").exists() and not Path("/tmp/elsewhere.wav").exists()
