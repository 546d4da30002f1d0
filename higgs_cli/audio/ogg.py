"""Ogg files that are the same bytes for the same audio: libsndfile gives each Ogg stream a random
serial number, so two identical renders differ. `fix_serial` rewrites it (and each page's CRC,
through mutagen) to one fixed number; a single-stream file needs no other."""

from __future__ import annotations

import os
from pathlib import Path

SERIAL = 0x68696767  # "higg": any fixed number will do for a file with one logical stream


def fix_serial(path: Path, serial: int = SERIAL) -> None:
    """Give every page of the Ogg file `path` the stream serial `serial` (written beside, then renamed)."""
    from mutagen.ogg import OggPage

    tmp = path.with_name(path.name + ".serial")
    try:
        with open(path, "rb") as source, open(tmp, "wb") as sink:
            while True:
                try:
                    page = OggPage(source)
                except EOFError:
                    break
                page.serial = serial
                sink.write(page.write())  # write() computes the page's CRC anew
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
