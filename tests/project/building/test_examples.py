"""The example projects in projects/: they validate, render end to end on a tiny
random model, and their synthetic voice references are reproducible.

Renders always run on a copy in tmp_path, never in the repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PROJECTS = Path(__file__).resolve().parents[3] / "projects"
# example -> (lines as written in project.yaml, lines after planning: clone chunks long paragraphs)
EXAMPLES = {"podcast": (12, 12), "audiobook": (6, 8), "jingle": (3, 3)}
SAMPLE_RATE = 24_000
_TIME = r"(\d{2}):(\d{2}):(\d{2})[,.](\d{3})"
_CUE = re.compile(rf"^{_TIME} --> {_TIME}\n(.+?)(?:\n\n|\Z)", re.MULTILINE | re.DOTALL)


def run_json(cli, *args) -> dict:
    result = cli("--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cues(text: str) -> list[tuple[int, int, str]]:
    """(start ms, end ms, text) of every cue in SRT or WebVTT text."""
    found = []
    for match in _CUE.finditer(text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups()[:8])
        found.append(((h1 * 3600 + m1 * 60 + s1) * 1000 + ms1, (h2 * 3600 + m2 * 60 + s2) * 1000 + ms2,
                      match.group(9).strip()))
    return found


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_validates(cli, name):
    data = run_json(cli, "project", "validate", PROJECTS / name)
    assert data["valid"] and data["lines"] == EXAMPLES[name][0]
    assert (PROJECTS / name / "README.md").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_renders_end_to_end(cli, tiny_model, tmp_path, name):
    project = tmp_path / name
    shutil.copytree(PROJECTS / name, project, ignore=shutil.ignore_patterns("build", ".higgs"))
    planned = run_json(cli, "project", "status", project)["lines"]  # the plan, without a model
    assert len(planned) == EXAMPLES[name][1]

    first = run_json(cli, "project", "render", project, "--model", tiny_model)
    assert first["is_random"] and "noise" in first["warning"]
    assert (first["lines"], first["generated"], first["cached"]) == (len(planned), len(planned), 0)

    build = project / "build"
    outputs = first["outputs"]
    assert Path(outputs["manifest"]) == build / "manifest.json"
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["is_random"] is True and "noise" in manifest["note"]
    lines = manifest["lines"]
    assert [(m["section"], m["index"], m["speaker"], m["text"]) for m in lines] == \
        [(p["section"], p["index"], p["speaker"], p["text"]) for p in planned]
    assert all(m["source"] == "generated" for m in lines)

    # the master: its length is the manifest's duration, which ends with the last line
    master = Path(outputs["master"])
    assert master.parent == build and master.suffix == ".wav"
    info = sf.info(master)
    assert (info.samplerate, info.channels) == (SAMPLE_RATE, 1)
    assert info.frames / SAMPLE_RATE == pytest.approx(manifest["duration"], abs=1e-3)
    assert first["duration"] == pytest.approx(manifest["duration"], abs=1e-3)
    assert lines[-1]["end"] == pytest.approx(manifest["duration"], abs=1e-3)

    # one stem per line, as long as its span in the track
    assert sorted(Path(p) for p in outputs["stems"]) == sorted(build / m["stem"] for m in lines)
    for m in lines:
        stem = sf.info(build / m["stem"])
        assert stem.frames / SAMPLE_RATE == pytest.approx(m["end"] - m["start"], abs=1e-3)

    # subtitles: the cues build_cues makes of the manifest's lines (markers out, wrapped, never overlapping)
    from higgs_cli.audio.subtitles import Cue, build_cues

    want = build_cues([Cue(m["start"], m["end"], m["text"], m["speaker"]) for m in lines])
    expected = [(round(c.start * 1000), round(c.end * 1000)) for c in want]
    srt = cues(Path(outputs["srt"]).read_text(encoding="utf-8"))
    vtt_text = Path(outputs["vtt"]).read_text(encoding="utf-8")
    vtt = cues(vtt_text)
    assert vtt_text.startswith("WEBVTT")
    assert [(a, b) for a, b, _ in srt] == expected == [(a, b) for a, b, _ in vtt]
    assert all(a <= b for (_, a, _), (b, _, _) in zip(srt, srt[1:]))
    assert [t for *_, t in srt] == [f"{c.speaker}: {c.text}" if c.speaker else c.text for c in want]
    assert [t for *_, t in vtt] == [f"<v {c.speaker}>{c.text}" if c.speaker else c.text for c in want]

    status = run_json(cli, "project", "status", project)
    assert status["outputs_current"] and status["counts"]["rendered"] == len(planned)

    # a second render generates nothing and writes the same track
    audio = sf.read(master, dtype="int16")[0]
    again = run_json(cli, "project", "render", project, "--model", tiny_model)
    assert (again["lines"], again["generated"], again["cached"]) == (len(planned), 0, len(planned))
    manifest2 = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    assert all(m["source"] == "cache" for m in manifest2["lines"])
    assert [m["key"] for m in manifest2["lines"]] == [m["key"] for m in lines]
    assert np.array_equal(sf.read(master, dtype="int16")[0], audio)

    if name == "podcast":  # per-line overrides reach the requests
        talk = {m["index"]: m for m in lines if m["section"] == "talk"}
        assert talk[3]["seed"] == 7 and talk[3]["sampling"]["temperature"] == 0.5
        assert talk[4]["pause_after"] == 0.8 and talk[0]["seed"] == 42
        assert "<SE>[Laughter]</SE>" in talk[2]["prompt_text"] and "[laugh]" in talk[2]["text"]
    if name == "audiobook":  # long paragraphs became chunks that hear the chunks before them
        chapter = [m for m in lines if m["section"] == "chapter-1"]
        assert len(chapter) == 6 and chapter[3]["context_from"] == [1, 2]


@pytest.mark.slow
def test_make_voices_reproduces_the_committed_references(tmp_path):
    result = subprocess.run([sys.executable, str(PROJECTS / "make_voices.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(PROJECTS) for p in PROJECTS.glob("*/voices/*") if p.is_file())
    assert made == committed and made
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (PROJECTS / rel).read_bytes(), f"{rel} differs"
    for wav in PROJECTS.glob("*/voices/*.wav"):
        with wave.open(str(wav)) as clip:
            assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (SAMPLE_RATE, 1, 2)
            assert 2.0 <= clip.getnframes() / SAMPLE_RATE <= 4.0
        assert wav.stat().st_size < 200_000
        assert wav.with_suffix(".txt").read_text(encoding="utf-8").strip()
