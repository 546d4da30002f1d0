"""Atomic writes: the modes the user's umask gives, and links that point nowhere."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from higgs_cli.errors import UsageError
from higgs_cli.fsutil import atomic_dir, atomic_path, atomic_write_text, check_writable, current_umask


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                             (0o002, 0o664, 0o775)])
def test_atomic_writes_take_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "a.txt", "hi")
    assert mode(tmp_path / "a.txt") == file_mode
    with atomic_path(tmp_path / "b.wav") as tmp:
        tmp.write_bytes(b"x")
    assert mode(tmp_path / "b.wav") == file_mode
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("x")
    assert mode(tmp_path / "folder") == dir_mode
    assert mode(tmp_path / "folder" / "inside.txt") == file_mode
    assert current_umask() == mask  # reading it changed nothing


def test_replacing_gives_the_umask_mode_too(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "old.txt"
    target.write_text("old")
    target.chmod(0o600)  # as an earlier higgs wrote it
    atomic_write_text(target, "new")
    assert mode(target) == 0o644 and target.read_text() == "new"
    (tmp_path / "box").mkdir(mode=0o700)
    with atomic_dir(tmp_path / "box"):
        pass
    assert mode(tmp_path / "box") == 0o755


def test_umask_without_proc(tmp_path, umask, monkeypatch):
    """Where /proc is missing the umask is read by setting it, and left as it was."""
    real_open = open

    def no_proc(file, *args, **kwargs):
        if str(file).startswith("/proc/"):
            raise FileNotFoundError(file)
        return real_open(file, *args, **kwargs)

    umask(0o027)
    monkeypatch.setattr("builtins.open", no_proc)
    assert current_umask() == 0o027
    monkeypatch.undo()
    assert current_umask() == 0o027


def test_a_link_that_points_nowhere_is_refused(tmp_path):
    link = tmp_path / "out.wav"
    link.symlink_to(tmp_path / "missing" / "target.wav")
    for write in (lambda: check_writable(link), lambda: atomic_write_text(link, "x")):
        with pytest.raises(UsageError, match="link .* that points nowhere"):
            write()
    with pytest.raises(UsageError, match="points nowhere"):
        with atomic_dir(link):
            pytest.fail("must not start")
    assert link.is_symlink() and not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]  # no temporary left


def test_a_link_to_an_existing_file_is_replaced_not_followed(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert target.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"


def test_what_the_cli_writes_takes_the_umask(cli, fake_sessions, tmp_path, umask):
    """project new, say and a render: every file 0644 and folder 0755 under umask 022, as other tools make them."""
    from fakes import FakeSession

    fake_sessions.each(lambda: FakeSession(is_random=True))
    umask(0o022)
    work = tmp_path / "work"
    work.mkdir()
    for args in (["project", "new", work / "show"], ["say", "Hello there.", "-o", work / "hi.wav"],
                 ["project", "render", work / "show"]):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    written = [p for p in work.rglob("*") if not p.is_symlink()]
    assert len(written) > 5 and (work / "show" / "project.yaml").is_file()
    wrong = {str(p.relative_to(work)): oct(mode(p)) for p in written if mode(p) != (0o755 if p.is_dir() else 0o644)}
    assert wrong == {}
