"""SRT and WebVTT text for a known cue list, byte for byte."""

from __future__ import annotations

import pytest

from higgs_cli.audio.subtitles import Cue, to_srt, to_webvtt

CUES = [
    Cue(0.0, 1.2344, "Hello there."),
    Cue(1.5, 3.0006, "General Kenobi!", speaker="Grievous"),
    Cue(3661.25, 3662.0, "  Two lines\n\n  of text  ", speaker="Ana"),
]


def test_srt_exact():
    assert to_srt(CUES) == (
        "1\n"
        "00:00:00,000 --> 00:00:01,234\n"
        "Hello there.\n"
        "\n"
        "2\n"
        "00:00:01,500 --> 00:00:03,001\n"
        "Grievous: General Kenobi!\n"
        "\n"
        "3\n"
        "01:01:01,250 --> 01:01:02,000\n"
        "Ana: Two lines\n"
        "of text\n"
    )


def test_webvtt_exact():
    assert to_webvtt(CUES) == (
        "WEBVTT\n"
        "\n"
        "00:00:00.000 --> 00:00:01.234\n"
        "Hello there.\n"
        "\n"
        "00:00:01.500 --> 00:00:03.001\n"
        "<v Grievous>General Kenobi!\n"
        "\n"
        "01:01:01.250 --> 01:01:02.000\n"
        "<v Ana>Two lines\n"
        "of text\n"
    )


def test_webvtt_escapes_markup():
    text = to_webvtt([Cue(0, 1, "a <b> & c --> d", speaker="R&D")])
    assert "<v R&amp;D>a &lt;b&gt; &amp; c --&gt; d" in text
    assert text.count("-->") == 1


def test_empty_lists():
    assert to_srt([]) == ""
    assert to_webvtt([]) == "WEBVTT\n"


def test_rounding_carries_into_the_next_second():
    assert "00:00:01,000 --> 00:01:00,000" in to_srt([Cue(0.9996, 59.9999, "x")])


@pytest.mark.parametrize(("start", "end"), [(-0.1, 1.0), (2.0, 1.0), (0.0, float("nan"))])
def test_bad_cue_times(start, end):
    with pytest.raises(ValueError):
        Cue(start, end, "x")
