"""Subtitles of delivered builds (issue 20 item 6), parsed with `srt` and `webvtt-py`: cues in order, never
overlapping, each within 10 ms of its line in the manifest, also when a profile puts room tone at the head
(every time shifts) and when the master is split by section."""

from __future__ import annotations

from pathlib import Path

import pytest
from delivery_helpers import book, manifest_of, render


@pytest.mark.parametrize("output", ["format: wav", "profile: acx, split: section", "format: m4b, profile: podcast"])
def test_cues_follow_the_manifest_within_10_ms(cli, fake_model, tmp_path, output):
    srt = pytest.importorskip("srt")
    webvtt = pytest.importorskip("webvtt")
    from higgs_cli.audio.io import supported_output_formats

    if "m4b" in output and "m4b" not in supported_output_formats():
        pytest.skip("PyAV with an AAC encoder is not installed")
    show = book(tmp_path / "show", sections=2, lines=3, output=output)
    summary = render(cli, show)
    manifest = manifest_of(show)
    lines = [line for line in manifest["lines"] if not line["missing"]]
    if "acx" in output:
        assert lines[0]["start"] == pytest.approx(0.75, abs=0.001)  # after the head's room tone

    srt_cues = list(srt.parse(Path(summary["outputs"]["srt"]).read_text(encoding="utf-8")))
    vtt_cues = list(webvtt.read(summary["outputs"]["vtt"]))
    assert len(srt_cues) == len(vtt_cues) == len(lines)  # short lines: one cue each
    for cue, vtt, line in zip(srt_cues, vtt_cues, lines):
        for start, end in ((cue.start.total_seconds(), cue.end.total_seconds()),
                           (_seconds(vtt.start), _seconds(vtt.end))):
            assert start == pytest.approx(line["start"], abs=0.010)
            assert end == pytest.approx(line["end"], abs=0.010)
        assert cue.content == line["text"] and vtt.text == line["text"]
    for cues in ([(c.start.total_seconds(), c.end.total_seconds()) for c in srt_cues],
                 [(_seconds(c.start), _seconds(c.end)) for c in vtt_cues]):
        assert cues == sorted(cues)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(cues, cues[1:]))  # no overlaps
        assert cues[-1][1] <= manifest["duration"] + 0.0005  # ms rounding


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
