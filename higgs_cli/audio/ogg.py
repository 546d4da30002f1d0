"""Ogg files that are the same bytes for the same audio: libsndfile gives each Ogg stream a random
serial number, so two identical renders differ. `fix_serial` rewrites it (and each page's CRC,
through mutagen) to one fixed number; a single-stream file needs no other."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

SERIAL = 0x68696767  # "higg": any fixed number will do for a file with one logical stream


def fix_serial(path: Path, serial: int = SERIAL) -> None:
    """Give every page of the Ogg file `path` the stream serial `serial` (written beside, then renamed)."""
    tmp = path.with_name(path.name + ".serial")
    try:
        with open(path, "rb") as source, open(tmp, "wb") as sink:
            _copy_pages(source, sink, serial)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def with_fixed_serial(data: bytes, serial: int = SERIAL) -> bytes:
    """`fix_serial` for an Ogg file held in memory (a server's answer)."""
    sink = io.BytesIO()
    _copy_pages(io.BytesIO(data), sink, serial)
    return sink.getvalue()


def _copy_pages(source: BinaryIO, sink: BinaryIO, serial: int) -> None:
    from mutagen.ogg import OggPage

    while True:
        try:
            page = OggPage(source)
        except EOFError:
            break
        page.serial = serial
        sink.write(page.write())  # write() computes the page's CRC anew
