"""Run the real `higgs` CLI with a FakeSession in place of a model: a test helper for subprocesses.

    python tests/fake_cli.py [higgs arguments...]

Tests that kill or race whole processes use it: it starts in well under a
second (no torch), and it can stop at a chosen point so that a signal lands
exactly there. Environment variables:

    FAKE_FRAMES=N        every generated line is N frames (40 ms each) long
    FAKE_DELAY=S         each generate() call sleeps S seconds first
    FAKE_PAUSE_AT=POINT  at POINT, create the file $FAKE_PAUSE_FILE and wait until a signal comes
                         or the test deletes that file (then carry on):
                         "generate:N"  the start of the N-th generate() call (1-based);
                         "encode:N"    the N-th encoding of a voice recording;
                         "write:GLOB"  inside the first atomic write of a file whose name matches
                                       GLOB, after the temporary file is written, before the rename
    FAKE_RSS_FILE=PATH   at exit, write the peak resident memory of the process (KiB) to PATH
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fakes import FakeSession  # noqa: E402

from higgs_cli import fsutil  # noqa: E402
from higgs_cli.engine.request import NUM_CODEBOOKS, GenerationResult  # noqa: E402

PAUSE_AT = os.environ.get("FAKE_PAUSE_AT", "")
_paused: set[str] = set()


def _pause(point: str) -> None:
    if point == PAUSE_AT and point not in _paused:
        _paused.add(point)
        flag = Path(os.environ["FAKE_PAUSE_FILE"])
        flag.write_text(str(os.getpid()))
        deadline = time.monotonic() + 120
        while flag.exists() and time.monotonic() < deadline:
            time.sleep(0.01)


class ScriptedSession(FakeSession):
    """FakeSession with a fixed line length, an optional delay and pause points."""

    def encode_audio(self, audio):
        _pause(f"encode:{self.encode_calls + 1}")
        return super().encode_audio(audio)

    def generate(self, requests, *, batch_size=8, progress=None):
        _pause(f"generate:{self.generate_calls + 1}")
        if os.environ.get("FAKE_DELAY"):
            time.sleep(float(os.environ["FAKE_DELAY"]))
        frames = os.environ.get("FAKE_FRAMES")
        if frames is None:
            return super().generate(requests, batch_size=batch_size, progress=progress)
        self.generate_calls += 1
        results = []
        for request in requests:
            self.requests.append(request)
            n = min(int(frames), request.max_frames)
            codes = np.random.default_rng(self.request_id(request)).integers(0, 1024, size=(NUM_CODEBOOKS, n))
            results.append(GenerationResult(codes=codes, audio=self.decode(codes), finished=n < request.max_frames))
        return results


_atomic_path = fsutil.atomic_path


@contextlib.contextmanager
def _pausing_atomic_path(target, **kwargs):
    with _atomic_path(target, **kwargs) as tmp:
        yield tmp
        if PAUSE_AT.startswith("write:") and fnmatch.fnmatch(Path(target).name, PAUSE_AT[len("write:"):]):
            _pause(PAUSE_AT)


class ScriptedOpener:
    """`sessions.open_session` opens a ScriptedSession (the seam tests/conftest.py's fixture uses too)."""

    def identity(self, spec):
        from higgs_cli.sessions.open import session_identity

        return session_identity(spec)  # the real one: a checkpoint's, or None (known once loaded)

    def load(self, spec, notes):
        return ScriptedSession(is_random=True)


def _report_rss() -> None:
    Path(os.environ["FAKE_RSS_FILE"]).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    # Patch before the CLI modules import these names.
    fsutil.atomic_path = _pausing_atomic_path
    from higgs_cli.sessions import use_opener

    use_opener(ScriptedOpener())
    if os.environ.get("FAKE_RSS_FILE"):
        atexit.register(_report_rss)
    from higgs_cli.cli.app import main as higgs

    higgs(sys.argv[1:])


if __name__ == "__main__":
    main()
