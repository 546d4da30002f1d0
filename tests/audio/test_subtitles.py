"""SRT and WebVTT text for a known cue list, byte for byte; cues laid out from timed lines."""

from __future__ import annotations

import io

import pytest

from higgs_cli.audio.subtitles import Cue, build_cues, strip_markers, to_srt, to_webvtt

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


# laying out cues: markers, labels, wrapping, no overlaps

LONG = ("This is a very long line that goes on and on, well past the usual limit of forty-two characters "
        "a line, and then some more words so that it needs a third page of text to be read.")


def crossfaded(n: int = 4, overlap: float = 0.5) -> list[Cue]:
    """Lines as `assemble` places them with pause 0 and crossfade_ms 500: each overlaps the next."""
    lines, start = [], 0.0
    for i in range(n):
        end = start + 3.0
        lines.append(Cue(start, end, f"[music start] Line {i} [laugh] here. [music end]",
                               "host" if i % 2 else "guest"))
        start = end - overlap
    return lines


def test_crossfaded_cues_never_overlap_as_parsers_read_them():
    srt = pytest.importorskip("srt")
    webvtt = pytest.importorskip("webvtt")
    cues = build_cues(crossfaded())
    parsed = list(srt.parse(to_srt(cues)))
    assert len(parsed) == 4
    for a, b in zip(parsed, parsed[1:]):
        assert a.start < a.end <= b.start < b.end
    assert parsed[0].end.total_seconds() == pytest.approx(2.75)  # the overlap is shared half and half
    vtt = webvtt.from_buffer(io.StringIO(to_webvtt(cues)))
    ends = [(c.start_in_seconds, c.end_in_seconds) for c in vtt]
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(ends, ends[1:]))
    assert [c.voice for c in vtt] == ["guest", "host", "guest", "host"]


def test_markers_and_sound_event_tags_are_not_shown():
    assert strip_markers("[music start] Welcome to the show! [Music  End]") == "Welcome to the show!"
    assert strip_markers("<SE_s>[Music]</SE_s> Hi <SE>[Laughter]</SE>, you. <SE_e>[Music]</SE_e>") == "Hi, you."
    assert strip_markers("[SPEAKER1] [laugh]") == ""
    assert strip_markers("The array [1, 2] stays.") == "The array [1, 2] stays."
    cues = build_cues([Cue(0, 1, "[laugh]", "a"), Cue(1, 2, "Hello [cough] there", "a")])
    assert [c.text for c in cues] == ["Hello there"]


@pytest.mark.parametrize(("labels", "speakers", "labelled"), [
    ("auto", ["narrator", "narrator"], False),
    ("auto", ["ana", "bo"], True),
    ("always", ["narrator", "narrator"], True),
    ("never", ["ana", "bo"], False),
])
def test_speaker_labels_setting(labels, speakers, labelled):
    lines = [Cue(i, i + 1, "Words.", who) for i, who in enumerate(speakers)]
    cues = build_cues(lines, labels=labels)
    assert all((c.speaker is not None) == labelled for c in cues)
    assert (f"{speakers[0]}: Words." in to_srt(cues)) == labelled
    with pytest.raises(ValueError, match="labels"):
        build_cues(lines, labels="sometimes")


def test_long_lines_wrap_to_two_lines_of_42_and_share_the_time():
    srt = pytest.importorskip("srt")
    cues = build_cues([Cue(10.0, 25.0, LONG, "ana"), Cue(25.0, 26.0, "Short.", "bo")])
    parsed = list(srt.parse(to_srt(cues)))
    assert len(parsed) == 4
    for cue in parsed:
        rows = cue.content.split("\n")
        assert len(rows) <= 2 and all(len(row) <= 42 for row in rows)
    assert parsed[0].start.total_seconds() == 10.0 and parsed[2].end.total_seconds() == 25.0
    for a, b in zip(parsed, parsed[1:]):
        assert a.end <= b.start
    words = " ".join(" ".join(c.text.split()) for c in cues[:3])
    assert words == LONG  # nothing lost or reordered
    # time in proportion to characters
    chars = [len(c.text.replace("\n", "")) for c in cues[:3]]
    spans = [c.end - c.start for c in cues[:3]]
    assert spans == pytest.approx([15.0 * n / sum(chars) for n in chars], rel=0.01)
    assert cues[3].text == "Short."


def test_cjk_text_wraps_by_display_width_without_leading_punctuation():
    text = "小明说：这是一个非常长的句子，没有空格，需要按照字符来折行显示，否则会超出屏幕的宽度限制。"
    cues = build_cues([Cue(0, 4, text, "小明")], labels="never")
    rows = [row for c in cues for row in c.text.split("\n")]
    assert "".join(rows) == text
    assert all(len(row) <= 21 for row in rows)  # wide characters take two of the 42 columns
    assert not any(row[0] in "，。：" for row in rows)


def test_short_line_stays_one_line_and_empty_input():
    assert [c.text for c in build_cues([Cue(0, 1, "Hello there.", None)])] == ["Hello there."]
    assert build_cues([]) == []


def test_a_labelled_line_that_fits_two_lines_stays_one_cue():
    """Issue 35.7: the "Ann: " label takes room on a cue's first line only, so 76 characters fit two lines."""
    text = "The lighthouse keeper climbed the stairs slowly, counting every single step."
    assert len(text) == 76
    cues = build_cues([Cue(0, 5, text, "Ann"), Cue(5, 6, "Yes.", "Bob")], labels="always")
    assert len(cues) == 2 and cues[0].text.count("\n") == 1
    rows = to_srt(cues).split("\n\n")[0].splitlines()[2:]
    assert rows[0].startswith("Ann: ") and all(len(row) <= 42 for row in rows)
    assert " ".join(cues[0].text.split()) == text
