"""Single files named by a URL or a path: a voice reference, a transcript.

`local_copy(value)` gives a local path for either: a path as it is, a URL as a
temporary download (removed afterwards), keeping its extension so the audio
reader knows the format. `read_text(value)` reads a small text file from either.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from higgs_cli import home
from higgs_cli.errors import UsageError
from higgs_cli.fsutil import read_capped_text
from higgs_cli.storage.objects import Prefix
from higgs_cli.storage.urls import looks_like_url, parse_url

MAX_FILE = 512 << 20  # a voice recording or transcript larger than this is not one
MAX_TEXT = 1 << 20


def _sized(prefix: Prefix, limit: int, what: str) -> None:
    info = prefix.info("")
    if info is None or info.get("type") == "directory":
        raise UsageError(f"{what} {prefix.url} does not exist", hint="check the URL (a file, not a prefix)")
    if int(info.get("size") or 0) > limit:
        raise UsageError(f"{what} {prefix.url} is {int(info['size']) >> 20} MiB; at most {limit >> 20} MiB")


@contextmanager
def local_copy(value: str | os.PathLike, *, what: str = "file") -> Iterator[Path]:
    """A local path to the file `value` names (a path, or a URL downloaded for the duration)."""
    if not looks_like_url(value):
        yield Path(value)
        return
    prefix = Prefix(parse_url(value, what=what), what=what)
    _sized(prefix, MAX_FILE, what)
    folder = home.cache_dir() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="url-", dir=folder))
    try:
        target = scratch / (PurePosixPath(prefix.url.key).name or "file")
        prefix.download("", target, action=f"reading {what}")
        yield target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_text(value: str | os.PathLike, *, what: str = "transcript") -> str:
    """The UTF-8 text of a small file (at most MAX_TEXT) named by a path or a URL.

    A local path must be a regular file: a FIFO or a device (/dev/zero) is refused without being read.
    """
    if not looks_like_url(value):
        return read_capped_text(value, MAX_TEXT, what=what)
    prefix = Prefix(parse_url(value, what=what), what=what)
    _sized(prefix, MAX_TEXT, what)
    data = prefix.read("", action=f"reading {what}")
    if data is None:
        raise UsageError(f"{what} {prefix.url} does not exist")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {prefix.url} is not UTF-8 text") from None
