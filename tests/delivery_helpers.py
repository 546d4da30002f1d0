"""Shared by the delivery tests (test_delivery*.py, test_check_profiles.py, test_review_page.py):
small projects and readers this project did not write (ffprobe); the `fake_model` fixture is in
tests/project/conftest.py."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import textwrap
import zlib
from pathlib import Path

import pytest
from fakes import FakeSession, write_voice

from higgs_cli.sessions.identity import ModelIdentity

FAKE = ModelIdentity(name="fake/model", model_id=FakeSession.model_id, codec_id=FakeSession.codec_id)
FFPROBE = shutil.which("ffprobe")
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.needs_ffmpeg  # skipped where ffmpeg/ffprobe are absent (tests/conftest.py)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, built by hand (zlib and struct only)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xc0\x40\x20" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def book(folder: Path, *, output: str = "", top: str = "", sections: int = 2, lines: int = 2) -> Path:
    """A narrated project of `sections` chapters (`ch1`...), `lines` lines each, with author and narrator."""
    folder.mkdir(parents=True, exist_ok=True)
    write_voice(folder / "voices" / "reader.wav", seconds=1.0)
    script = "\n".join(
        f"  - id: ch{s + 1}\n    task: dialogue\n    lines:\n"
        + "\n".join(f"      - reader: \"Chapter {s + 1}, sentence {n + 1}, read aloud.\"" for n in range(lines))
        for s in range(sections))
    (folder / "project.yaml").write_text(textwrap.dedent(f"""\
        title: The Long Book
        author: Ada Author
        narrator: Ned Narrator
        {top}
        defaults: {{seed: 3}}
        output: {{{output}}}
        speakers:
          reader: {{audio: voices/reader.wav, transcript: "Hello, I read books."}}
        script:
        """) + script + "\n", encoding="utf-8")
    return folder


def render(cli, folder: Path, *args: str) -> dict:
    result = cli("--json", "project", "render", folder, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "build" / "manifest.json").read_text(encoding="utf-8"))


def ffprobe(path: Path) -> dict:
    """Streams, format (with tags) and chapters as ffprobe reads them."""
    out = subprocess.run([FFPROBE, "-v", "error", "-show_chapters", "-show_format", "-show_streams", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def chapters(path: Path) -> list[tuple[str, float, float]]:
    """(title, start, end) of each chapter ffprobe finds, in time order."""
    found = [(c.get("tags", {}).get("title"), float(c["start_time"]), float(c["end_time"]))
             for c in ffprobe(path)["chapters"]]
    return sorted(found, key=lambda c: c[1])
