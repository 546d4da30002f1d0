"""Text normalization, chunking and limits (higgs_cli.engine.text)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from higgs_cli.engine.text import MARKERS, MAX_TEXT_CHARS, check_text, chunk_text, normalize_text
from higgs_cli.errors import UsageError

NORMALIZE_CASES = [
    # a CJK sentence running into Latin text keeps a space after its stop
    ("我们下一站是里斯本。That means sun.", "我们下一站是里斯本. That means sun."),
    ("你好。我们走吧", "你好.我们走吧."),
    # markers -> sound-event tags
    ("Hello [laugh] there", "Hello <SE>[Laughter]</SE> there."),
    ("[music] Welcome", "<SE>[Music]</SE> Welcome."),
    ("[music start] la la [music end]", "<SE_s>[Music]</SE_s> la la <SE_e>[Music]</SE_e>"),
    ("[sing start] do re mi [sing end]", "<SE_s>[Singing]</SE_s> do re mi <SE_e>[Singing]</SE_e>"),
    ("[humming start] mm [humming end]", "<SE>[Humming]</SE> mm <SE_e>[Humming]</SE_e>"),
    ("Thank you [applause]", "Thank you <SE>[Applause]</SE>"),
    ("Goal [cheering]", "Goal <SE>[Cheering]</SE>"),
    ("Excuse me [cough] sorry", "Excuse me <SE>[Cough]</SE> sorry."),
    ("[Laugh] and [MUSIC  Start]", "<SE>[Laughter]</SE> and <SE_s>[Music]</SE_s>"),
    ("[SPEAKER0] Hi", "[SPEAKER0] Hi."),  # speaker tags and unknown brackets stay
    ("<SE>[Music]</SE> already tagged", "<SE>[Music]</SE> already tagged."),
    # Chinese punctuation -> ASCII, parentheses dropped
    ("你好，世界。", "你好, 世界."),
    ("真的吗？太好了！", "真的吗?太好了!"),
    ("注意：第一；第二、第三", "注意:第一;第二,第三."),
    ("他说“你好”", '他说"你好"'),
    ("‘单引号’", "'单引号'"),
    ("今天（星期一）很热", "今天 星期一 很热."),
    ("《红楼梦》", '"红楼梦"'),
    ("「引用」『二重』", '"引用""二重"'),
    ("【laugh】好笑", "<SE>[Laughter]</SE>好笑."),
    ("等一下……", "等一下......"),
    ("约翰·史密斯", "约翰 史密斯."),
    ("Mixed 中文 and English，ok", "Mixed 中文 and English, ok."),
    ("It (really) works", "It really works."),
    # temperatures
    ("It is 70°F outside", "It is 70 degrees Fahrenheit outside."),
    ("Water boils at 100 °C.", "Water boils at 100 degrees Celsius."),
    ("气温25℃", "气温25 degrees Celsius."),
    ("Cold: -5℉", "Cold: -5 degrees Fahrenheit."),
    ("A 90° angle", "A 90° angle."),
    # whitespace, blank lines, control characters
    ("  a \t b  ", "a b."),
    ("one\n\n\ntwo", "one\ntwo."),
    ("one\r\ntwo\rthree", "one\ntwo\nthree."),
    ("bell\x07 and nul\x00", "bell and nul."),
    ("zero\u200bwidth\ufeff", "zerowidth."),
    # only invisible format characters (Unicode category Cf): nothing to speak
    ("\u200d\u2060\u200e\u202e\u00ad\u2066", ""),
    (" \u200c \n\u200f ", ""),
    ("a\u200db", "a\u200db."),  # a joiner inside words stays
    ("line\u2028sep", "line\nsep."),
    ("", ""),
    ("  \n\t ", ""),
    # NFC: a decomposed é becomes the composed one
    ("cafe\u0301", "caf\u00e9."),
    # final punctuation
    ("Done.", "Done."),
    ("Really?", "Really?"),
    ("Stop!", "Stop!"),
    ("and so,", "and so,"),
    ("first;", "first;"),
    ("as follows:", "as follows:"),
    ('He said "yes"', 'He said "yes"'),
    ("It's 'fine'", "It's 'fine'"),
    ("No period", "No period."),
    ("50%", "50%."),
    ("“curly”", '"curly"'),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE_CASES)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), NORMALIZE_CASES)
def test_normalize_text_is_idempotent(raw, expected):
    assert normalize_text(expected) == expected


def test_every_marker_is_rewritten():
    for marker in MARKERS:
        out = normalize_text(f"x {marker} y")
        assert "<SE" in out and marker not in out


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_text_is_idempotent_on_any_text(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert "\r" not in once and "\t" not in once and "\n\n" not in once


# --- chunking -----------------------------------------------------------------

def _no_space(chunks):
    return "".join("".join(c.split()) for c in chunks)


def _collapsed(chunks):
    return " ".join(" ".join(c.split()) for c in chunks)


def _check_invariants(text, chunks, max_chars, *, cuts_on_whitespace=True):
    assert all(c and c == c.strip() for c in chunks)
    assert all(len(c) <= max_chars for c in chunks)
    assert _no_space(chunks) == "".join(text.split())
    if cuts_on_whitespace:
        assert _collapsed(chunks) == " ".join(text.split())


def test_chunk_short_text_is_one_chunk():
    assert chunk_text("  Hello world.  ", 300) == ["Hello world."]
    assert chunk_text("", 300) == []
    assert chunk_text(" \n\n ", 300) == []


def test_chunk_prefers_paragraphs():
    text = "First paragraph here.\n\nSecond paragraph here.\n\nThird one."
    chunks = chunk_text(text, 25)
    assert chunks == ["First paragraph here.", "Second paragraph here.", "Third one."]
    # small paragraphs are packed together when they fit
    assert chunk_text(text, 50) == ["First paragraph here.\n\nSecond paragraph here.", "Third one."]


def test_chunk_splits_sentences_then_clauses_then_words():
    text = "One two three. Four five six! Seven, eight, nine ten eleven twelve thirteen."
    chunks = chunk_text(text, 30)
    # the long sentence is cut at its clauses first; its too-long last clause at words
    assert chunks == ["One two three. Four five six!", "Seven, eight,", "nine ten eleven twelve", "thirteen."]
    _check_invariants(text, chunks, 30)


def test_chunk_does_not_split_decimal_numbers_or_thousands():
    text = "Pi is 3.14159 and a big number is 1,000,000 exactly. Next sentence."
    chunks = chunk_text(text, 55)
    assert chunks[0] == "Pi is 3.14159 and a big number is 1,000,000 exactly."


def test_chunk_long_paragraph_does_not_run_into_next():
    text = "Aaa bbb. Ccc ddd. Eee fff.\n\nNext."
    chunks = chunk_text(text, 18)
    assert chunks == ["Aaa bbb. Ccc ddd.", "Eee fff.", "Next."]


def test_chunk_chinese_sentences():
    text = "这是第一句。这是第二句！这是第三句？最后一句，有逗号。"
    chunks = chunk_text(text, 12)
    assert chunks == ["这是第一句。这是第二句！", "这是第三句？", "最后一句，有逗号。"]
    _check_invariants(text, chunks, 12, cuts_on_whitespace=False)


def test_chunk_chinese_without_punctuation_is_cut_hard():
    text = "一" * 25
    chunks = chunk_text(text, 10)
    assert [len(c) for c in chunks] == [10, 10, 5]
    _check_invariants(text, chunks, 10, cuts_on_whitespace=False)


def test_chunk_long_word_is_cut_hard_and_keeps_word_gaps():
    text = "x " + "a" * 25 + " b"
    chunks = chunk_text(text, 10)
    assert chunks == ["x", "a" * 10, "a" * 10, "aaaaa b"]
    _check_invariants(text, chunks, 10, cuts_on_whitespace=False)


def test_chunk_hard_cut_never_splits_a_combining_mark():
    text = "e\u0301" * 8  # 16 code points, all in one "word"
    chunks = chunk_text(text, 5)
    assert all(c[0] != "\u0301" for c in chunks)
    _check_invariants(text, chunks, 5, cuts_on_whitespace=False)


def test_chunk_mixed_scripts():
    text = "Hello there. 你好，世界。How are you? 我很好。" * 5
    chunks = chunk_text(text, 30)
    _check_invariants(text, chunks, 30, cuts_on_whitespace=False)
    assert chunks[:3] == ["Hello there. 你好，世界。", "How are you? 我很好。Hello there.",
                          "你好，世界。How are you? 我很好。"]


def test_chunk_rejects_bad_max():
    with pytest.raises(ValueError):
        chunk_text("hi", 0)


_words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Z", "Cc")), min_size=1, max_size=12)
_seps = st.sampled_from([" ", "  ", ". ", "! ", ", ", "; ", "\n", "\n\n", "。", "，", "\t"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_words, _seps), max_size=60), st.integers(min_value=1, max_value=80))
def test_chunk_invariants_hold_for_any_text(parts, max_chars):
    text = "".join(w + s for w, s in parts)
    chunks = chunk_text(text, max_chars)
    _check_invariants(text, chunks, max_chars, cuts_on_whitespace=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text("abcdefg.,!?;:", min_size=1, max_size=8),
                          st.sampled_from([" ", "  ", "\n", "\n\n"])), max_size=60),
       st.integers(min_value=8, max_value=80))
def test_chunk_cuts_on_whitespace_for_spaced_text(parts, max_chars):
    text = "".join(w + s for w, s in parts)
    chunks = chunk_text(text, max_chars)
    _check_invariants(text, chunks, max_chars, cuts_on_whitespace=True)


# --- limits -----------------------------------------------------------------

def test_check_text_accepts_ok_text():
    check_text("Hello", max_chars=10)
    check_text("  " + "x" * 10 + "  ", max_chars=10)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_check_text_rejects_empty(text):
    with pytest.raises(UsageError, match="empty"):
        check_text(text, max_chars=10)


def test_check_text_rejects_long_text():
    with pytest.raises(UsageError, match="11 characters long; the limit is 10") as info:
        check_text("x" * 11, max_chars=10, what="line 3")
    assert str(info.value).startswith("line 3 is")
    assert info.value.exit_code == 2


def test_max_text_chars_is_sane():
    assert 1000 <= MAX_TEXT_CHARS <= 20000


@pytest.mark.parametrize("text", ["\u200d\u2060", "\u200e \u200f", "\u00ad", "\u202a\u202c\u2066\u2069",
                                  "\u2061\u2062\u2063\u2064", "\U000e0001\U000e0020"])
def test_text_of_only_format_characters_has_nothing_to_speak(text):
    """Every character of category Cf, not only the zero-width space: `say` refuses it before any model."""
    from higgs_cli.speech import check_speakable

    assert all(unicodedata.category(ch) in ("Cf", "Zs") for ch in text)
    assert normalize_text(text) == ""
    with pytest.raises(UsageError, match="nothing to speak"):
        check_speakable(text)
    check_speakable("\u200dhi")  # with a letter, there is something to speak
    from higgs_cli.engine.text import nothing_to_speak

    assert nothing_to_speak(text, "line 3") == ("line 3 has nothing to speak once control and invisible characters "
                                                "are removed")  # the one wording, for every caller
    assert nothing_to_speak("\u200dhi") is None
