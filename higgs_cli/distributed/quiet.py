"""Ray's own output kept off the user's stderr and stdout (and so out of `--json`).

While Ray connects, its C++ core writes retries and warnings straight to file
descriptor 2 (about one line a second against a cluster that refuses it), and
its Python logger ("ray") writes to stderr. So fd 2 points at a temporary file
while Ray connects (`hidden_output`), and the "ray" logger keeps its last lines
in memory instead, with the messages the cluster sends the driver (`quiet_logger`);
they serve the error message when the connection fails. Once connected, the driver's C++ logs go to the files of Ray's
session (`python-core-driver-*.log`), and what workers print is not forwarded
(`log_to_driver=False`).
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


class _Kept(logging.Handler):
    """The last lines of Ray's Python logger, in memory."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=100)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")
        except Exception:  # a message that does not format is not worth a traceback
            pass


KEPT = _Kept()


def quiet_logger() -> None:
    """Ray's Python logger, and the cluster's messages to the driver ("a worker died", printed on
    stdout), into memory: Ray's own handler writes to whatever stderr is."""
    ray_logger = logging.getLogger("ray")
    ray_logger.handlers = [KEPT]
    ray_logger.propagate = False
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_higgs_kept", False):
        return

    def keep(data, *args, **kwargs) -> None:  # no public switch for these: the one function that prints
        for line in data.get("lines", []) if isinstance(data, dict) else []:
            KEPT.lines.append(f"cluster: {line}")

    keep._higgs_kept = True
    ray_worker.print_to_stdstream = keep


class Captured:
    """What Ray wrote while its output was hidden: the fd 2 text, then its logger's recent lines."""

    text = ""


@contextmanager
def hidden_output() -> Iterator[Captured]:
    """File descriptor 2 into a temporary file for the duration; the text in the yielded `Captured`."""
    captured = Captured()
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing of Ray's can reach the user's
        yield captured
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                sink.seek(0)
                captured.text = "\n".join([sink.read().decode("utf-8", errors="replace"), *KEPT.lines])
    finally:
        os.close(saved)
