"""Resource limits: the longest line, the longest render (output.max_hours), and memory that
stays flat however long a render is.

A render keeps only each line's codes in memory: audio goes to the cache as soon as it is
generated, and the track is assembled, measured, limited and encoded block by block. The
memory test renders a short and a long project in subprocesses with a FakeSession whose
lines are 30 s long, and compares their peak resident memory.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from fakes import FakeSession, make_project, section
from procs import run

from higgs_cli.engine.text import MAX_TEXT_CHARS
from higgs_cli.errors import UsageError, ValidationError
from higgs_cli.project.building.render import render_project
from higgs_cli.project.planning.plan import speech_seconds
from higgs_cli.project.reading.load import load_project


def _yaml(lines: list[str], output: str = "", max_seconds: float = 30) -> str:
    body = "\n".join(f"      - {json.dumps(text, ensure_ascii=False)}" for text in lines)
    return (f"defaults: {{max_seconds: {max_seconds}, pause: 0.2}}\n{output}speakers:\n  a: {{description: calm}}\n"
            f"script:\n  - id: s\n    task: clone\n    speaker: a\n    lines:\n{body}\n")


def test_a_line_is_at_most_max_text_chars(tmp_path):
    (tmp_path / "project.yaml").write_text(_yaml(["word " * (MAX_TEXT_CHARS // 5 + 1)]))
    with pytest.raises(ValidationError) as info:
        load_project(tmp_path)
    assert f"at most {MAX_TEXT_CHARS} characters" in info.value.problems[0]


def test_speech_estimate():
    assert speech_seconds("x" * 150, 30) == pytest.approx(10.0)
    assert speech_seconds("你" * 50, 30) == pytest.approx(10.0)  # a wide character counts three
    assert speech_seconds("Hi.", 30) == 0.5 and speech_seconds("x" * 9000, 30) == 30


def test_a_project_longer_than_max_hours_is_refused_by_validate(tmp_path):
    paragraph = "A sentence of a long book that goes on and on. " * 100  # about 5 minutes
    (tmp_path / "project.yaml").write_text(_yaml([paragraph] * 60, max_seconds=600))  # about 5 hours
    with pytest.raises(ValidationError) as info:
        load_project(tmp_path)
    [problem] = info.value.problems
    assert ":5:3: the project would last about 5." in problem and "output.max_hours is 4" in problem
    (tmp_path / "project.yaml").write_text(_yaml([paragraph] * 60, "output: {max_hours: 6}\n", max_seconds=600))
    assert load_project(tmp_path).output.max_hours == 6
    (tmp_path / "project.yaml").write_text(_yaml(["Hi."], "output: {max_hours: 25}\n"))
    with pytest.raises(ValidationError, match="has 1 problem"):
        load_project(tmp_path)


def test_a_render_longer_than_max_hours_is_refused_before_generating(tmp_path):
    """Checked again on the planned lines, which a plugin may multiply."""
    project = make_project(tmp_path, [section("s", "dialogue", *[("bob", "x" * 300)] * 20)])
    project = replace(project, output=replace(project.output, max_hours=0.1))  # 6 minutes; 20 x 20 s + pauses
    session = FakeSession()
    with pytest.raises(UsageError, match="output.max_hours is 0.1"):
        render_project(project, session)
    assert session.generate_calls == 0 and not (tmp_path / "build").exists()


def _peak_rss_kib(root, lines: int) -> tuple[int, float]:
    root.mkdir()
    (root / "project.yaml").write_text(_yaml([f"Line {i} of a long story." for i in range(lines)]))
    rss = root / "rss"
    result = run(["--json", "project", "render", root, "--batch-size", "2"], FAKE_FRAMES="750",
                 FAKE_RSS_FILE=str(rss), timeout=120)
    assert result.returncode == 0, result.stderr
    return int(rss.read_text()), json.loads(result.stdout)["duration"]


@pytest.mark.slow
def test_memory_stays_flat_as_a_render_gets_longer(tmp_path):
    short, short_seconds = _peak_rss_kib(tmp_path / "short", 4)  # 2 minutes of audio
    long, long_seconds = _peak_rss_kib(tmp_path / "long", 40)  # 20 minutes: 115 MB as float32
    assert long_seconds > 9 * short_seconds
    # Holding the track (let alone the several copies mastering makes) would add hundreds of MB.
    assert long - short < 40 * 1024, f"peak RSS {short} KiB for 2 min, {long} KiB for 20 min"
