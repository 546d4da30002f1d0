"""The on-disk cache of compiled decode steps: built once, never left damaged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from higgs_cli.engine.decode.aot import cache_root, cached_build, package_key


def _build(calls: list[Path]):
    def build(target: Path) -> None:
        calls.append(target)
        target.write_text("package")

    return build


def _load(path: Path) -> str:
    text = path.read_text()
    if text != "package":
        raise RuntimeError(f"damaged: {text!r}")
    return text


def test_built_once_then_loaded(tmp_path):
    calls: list[Path] = []
    path = tmp_path / "compiled" / "step.pt2"
    assert cached_build(path, _build(calls), _load) == "package"
    assert cached_build(path, _build(calls), _load) == "package"
    assert len(calls) == 1 and calls[0] != path  # built beside it, then renamed into place
    assert sorted(p.name for p in path.parent.iterdir() if p.name != ".build.lock") == ["step.pt2"]


def test_a_killed_build_is_swept_up(tmp_path):
    """A build killed outright (no cleanup ran) leaves a temporary file; the next build removes it."""
    from higgs_cli.fsutil import TMP_MARK

    left = tmp_path / f".step.pt2{TMP_MARK}.abc.pt2"
    left.write_text("half a package")
    assert cached_build(tmp_path / "step.pt2", _build([]), _load) == "package"
    assert not left.exists()


def test_a_damaged_file_is_built_again(tmp_path):
    path = tmp_path / "step.pt2"
    path.write_text("half a package")
    calls: list[Path] = []
    assert cached_build(path, _build(calls), _load) == "package"
    assert len(calls) == 1 and path.read_text() == "package"


def test_a_failed_build_leaves_nothing(tmp_path):
    def broken(target: Path) -> None:
        target.write_text("half a package")
        raise RuntimeError("compiler crashed")

    path = tmp_path / "step.pt2"
    with pytest.raises(RuntimeError, match="compiler crashed"):
        cached_build(path, broken, _load)
    assert [p.name for p in tmp_path.iterdir() if p.name != ".build.lock"] == []


def test_an_unwritable_cache_builds_for_the_session_only(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    calls: list[Path] = []
    assert cached_build(blocker / "step.pt2", _build(calls), _load) == "package"
    assert len(calls) == 1 and not calls[0].exists()  # a temporary folder, removed after loading


def test_cache_lives_in_higgs_home(_isolated_home):
    assert cache_root() == _isolated_home / "compiled"


def test_package_key_follows_what_the_step_depends_on(tiny_session):
    runner = tiny_session.runner
    key = package_key(runner, torch.float32)
    assert key == package_key(runner, torch.float32)
    assert key != package_key(runner, torch.bfloat16)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)  # kernels are built for a thread count
    try:
        assert key != package_key(runner, torch.float32)
    finally:
        torch.set_num_threads(threads)
