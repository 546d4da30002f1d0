"""Helpers for the robustness tests: byte snapshots of folders, and higgs in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

TESTS = Path(__file__).parent
REPO = TESTS.parent


def snapshot(*roots: Path) -> dict[str, bytes | str]:
    """Every file under `roots` (hidden ones too) with its bytes, and every link with its target."""
    found: dict[str, bytes | str] = {}
    for root in roots:
        if not os.path.lexists(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted(dirnames + filenames):
                path = Path(dirpath) / name
                if path.is_symlink():
                    found[str(path)] = "-> " + os.readlink(path)
                elif path.is_file():
                    found[str(path)] = path.read_bytes()
    return found


def changes(before: dict, after: dict, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """Paths that were added, removed or changed, except names ending in `ignore` (e.g. lock files)."""
    paths = sorted(set(before) | set(after))
    return [p for p in paths if before.get(p) != after.get(p) and not p.endswith(ignore)]


def env(**extra: str) -> dict[str, str]:
    """The test process's environment (HIGGS_HOME, offline) plus `extra`."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def start(args: list, *, fake: bool = True, **extra: str) -> subprocess.Popen:
    """`higgs ARGS` in a new process: with a FakeSession (tests/fake_cli.py) or the real model loader."""
    program = [sys.executable, str(TESTS / "fake_cli.py")] if fake else [sys.executable, "-m", "higgs_cli"]
    return subprocess.Popen([*program, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(**extra), cwd=REPO)


def run(args: list, *, fake: bool = True, timeout: float = 60, **extra: str) -> subprocess.CompletedProcess:
    proc = start(args, fake=fake, **extra)
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def wait_until(condition, *, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `condition()` until it is true; fail early if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            stdout, stderr = proc.communicate()
            raise AssertionError(f"the process ended ({proc.returncode}) first:\n{stdout}\n{stderr}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def paused(pause_file: Path, args: list, point: str, **extra: str) -> subprocess.Popen:
    """A fake-session higgs process stopped at `point` (see tests/fake_cli.py), ready for a signal."""
    proc = start(args, FAKE_PAUSE_AT=point, FAKE_PAUSE_FILE=str(pause_file), **extra)
    wait_until(pause_file.exists, proc=proc)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 30) -> tuple[int, str, str]:
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def resume(proc: subprocess.Popen, pause_file: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Let a paused process carry on, and wait for it to finish."""
    pause_file.unlink()
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def quickly(call, seconds=5.0):
    """Run `call` in a thread; fail if it has not finished in `seconds` (a FIFO would block forever).

    Returns what `call` returned, or the exception it raised (an AssertionError is raised here).
    """
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 (handed to the test)
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still reading after {seconds} s"
    if isinstance(outcome[0], AssertionError):  # a check inside `call` failed: fail here
        raise outcome[0]
    return outcome[0]
