"""Property-based tests: random projects, texts and clips.

- The project loader, given any document (random structures of the right and wrong
  shapes, random edits of a good file, random bytes), returns a Project or raises
  ValidationError: never another exception.
- Every project it accepts plans (with the installed tasks, no model) into lines whose
  context is earlier lines of their section, that lose and repeat no text, and whose
  cache keys depend only on the project.
- Text normalization keeps every letter and digit, in order, and leaves no control
  characters; chunking arbitrary text loses and repeats nothing (test_text.py holds
  the chunking properties for word-like text).
- Streaming assembly and mastering equal the whole-track computation.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from higgs_cli.audio.master import (
    LoudnessMeter,
    _faded,
    _limit,
    assemble,
    assemble_stream,
    master,
    master_blocks,
    measure_loudness,
)
from higgs_cli.engine.text import chunk_text, normalize_text
from higgs_cli.errors import ValidationError
from higgs_cli.project.folder.store import line_keys as _keys
from higgs_cli.project.planning.plan import ProjectPlanContext, global_context, plan_sections
from higgs_cli.project.reading.load import load_project

SR = 24_000
SOME = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_PROBLEM = re.compile(r"^.+:\d+:\d+: ")


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "voices").mkdir()
        (root / "voices" / "a.wav").write_bytes(b"RIFF")  # a file is enough: loading never decodes it
        (root / "notes.txt").write_text("The words in the recording.")
        yield root


def _load(folder: Path, text: str | bytes):
    file = folder / "project.yaml"
    file.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        return load_project(folder)
    except ValidationError as error:
        assert error.problems and all(_PROBLEM.match(p) for p in error.problems), error.problems
        return None


# --- documents ----------------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["", " ", "alice", "bob", "clone", "dialogue", "bgm", "hum", "voices/a.wav",
                                           "../a.wav", "/etc/passwd", "notes.txt", "[laugh] hi", "\u200b", "yes"]),
)
_keys_any = st.sampled_from(["title", "titel", "version", "model", "scene", "defaults", "output", "speakers",
                             "script", "task", "id", "text", "lines", "speaker", "voice", "audio", "transcript",
                             "transcript_file", "description", "seed", "temperature", "pause", "top_k", "top_p",
                             "max_seconds", "format", "loudness", "peak", "stems", "max_hours", "music",
                             "max_chunk_chars", "context_chunks", "context_lines", "alice", "bob", "x"])
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(_keys_any, inner, max_size=5)),
                       max_leaves=25)

_speaker = st.fixed_dictionaries({}, optional={
    "voice": st.sampled_from(["narrator", "x"]), "audio": st.sampled_from(["voices/a.wav", "missing.wav", "../a"]),
    "transcript": _scalars, "transcript_file": st.sampled_from(["notes.txt", "voices/a.wav", "nope.txt"]),
    "description": _scalars, "oops": _scalars})
_line = st.one_of(
    st.text(max_size=40), _values,
    st.dictionaries(st.sampled_from(["alice", "bob", "carol"]), st.text(max_size=40), min_size=1, max_size=2),
    st.fixed_dictionaries({"text": st.text(max_size=60)}, optional={
        "speaker": st.sampled_from(["alice", "bob", "carol"]), "seed": _scalars, "temperature": _scalars,
        "pause": _scalars, "scene": _scalars}),
)
_section = st.fixed_dictionaries({"task": st.sampled_from(["clone", "dialogue", "bgm", "hum", "clon", 3])}, optional={
    "id": st.sampled_from(["intro", "intro", "s1", "-bad", "x y"]), "speaker": st.sampled_from(["alice", "bob"]),
    "text": st.text(max_size=200), "lines": st.lists(_line, max_size=4), "music": _scalars,
    "max_chunk_chars": st.integers(-5, 400), "context_chunks": st.integers(-1, 4), "context_lines": _scalars,
    "seed": _scalars, "pause": _scalars, "scene": _scalars, "tempo": _scalars})
_document = st.fixed_dictionaries({}, optional={
    "title": _scalars, "version": st.sampled_from([1, 2, "1"]), "scene": _scalars, "model": _scalars,
    "defaults": st.one_of(_values, st.fixed_dictionaries({}, optional={
        "temperature": _scalars, "seed": _scalars, "max_seconds": _scalars, "pause": _scalars})),
    "output": st.one_of(_values, st.fixed_dictionaries({}, optional={
        "format": st.sampled_from(["wav", "flac", "ogg"]), "max_hours": _scalars, "stems": _scalars})),
    "speakers": st.one_of(_values, st.dictionaries(st.sampled_from(["alice", "bob", "text", "bad name"]), _speaker,
                                                   max_size=3)),
    "script": st.one_of(_values, st.lists(_section, min_size=1, max_size=3)),
    "extra": _values})


@SOME
@given(_document)
def test_any_document_loads_or_is_a_validation_error(folder, document):
    project = _load(folder, yaml.safe_dump(document, allow_unicode=True))
    if project is not None:
        _check_plan(project)


_words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn")), min_size=1,
                 max_size=120).filter(lambda t: normalize_text(t.strip()) != "")
_named = st.sampled_from(["alice", "bob", "carol"])
_sections = st.one_of(
    st.fixed_dictionaries({"task": st.just("clone"), "speaker": _named, "text": _words,
                           "max_chunk_chars": st.integers(20, 400), "context_chunks": st.integers(0, 3)}),
    st.fixed_dictionaries({"task": st.just("dialogue"),
                           "lines": st.lists(st.fixed_dictionaries({"speaker": _named, "text": _words}, optional={
                               "seed": st.integers(0, 2**32 - 1), "pause": st.floats(0, 30),
                               "temperature": st.floats(0, 2)}), min_size=1, max_size=4)},
                          optional={"context_lines": st.integers(0, 3)}),
    st.fixed_dictionaries({"task": st.just("bgm"), "speaker": _named, "music": _words, "text": _words}),
    st.fixed_dictionaries({"task": st.just("hum"), "speaker": st.sampled_from(["alice", "carol"]),
                           "melody": _words, "lines": st.lists(_words, min_size=1, max_size=3)}),
)
_valid = st.fixed_dictionaries({
    "speakers": st.just({"alice": {"audio": "voices/a.wav", "transcript": "Hello there."},
                         "bob": {"description": "calm voice"},
                         "carol": {"audio": "voices/a.wav", "transcript_file": "notes.txt"}}),
    "script": st.lists(_sections, min_size=1, max_size=4),
}, optional={"title": _words.filter(lambda t: len(t.strip()) <= 200), "scene": _words,
             "defaults": st.fixed_dictionaries({}, optional={"max_seconds": st.floats(0.1, 600),
                                                              "seed": st.integers(0, 2**32 - 1)})})


@SOME
@given(_valid)
def test_every_valid_document_loads_and_plans(folder, document):
    project = _load(folder, yaml.safe_dump(document, allow_unicode=True))
    assert project is not None
    _check_plan(project)


GOOD = """\
title: Show
speakers:
  alice: {audio: voices/a.wav, transcript_file: notes.txt}
  bob: {description: calm voice}
script:
  - id: story
    task: clone
    speaker: alice
    max_chunk_chars: 40
    text: |
      Once upon a time, in a land far away. There lived a fox, who liked [laugh] jokes.
  - task: dialogue
    lines:
      - alice: Hi Bob!
      - {speaker: bob, text: "Hello 你好.", seed: 3}
"""


@SOME
@given(st.lists(st.tuples(st.integers(0, len(GOOD)), st.integers(0, 8), st.text(max_size=6)), max_size=4))
def test_any_edit_of_a_good_file_loads_or_is_a_validation_error(folder, edits):
    text = GOOD
    for at, cut, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut:]
    project = _load(folder, text)
    if project is not None:
        _check_plan(project)


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_load_or_are_a_validation_error(folder, data):
    _load(folder, data)


def _no_space(text: str) -> str:
    return "".join(text.split())


def _check_plan(project):
    """Plan an accepted project (no model) and check what the planner promises."""
    ctx = ProjectPlanContext(project, codec_id="codec", encode=None)
    try:
        planned = plan_sections(project, ctx)
    except ValidationError:
        raise
    except Exception as error:  # only a missing library voice may stop a valid project from planning
        assert "no voice named" in str(error), error
        return
    order = [s.id for s in project.sections]
    assert [p.section for p in planned] == sorted((p.section for p in planned), key=order.index)
    for section in project.sections:
        mine = [p for p in planned if p.section == section.id]
        assert mine, f"section {section.id} planned no lines"
        for i, line in enumerate(mine):
            assert all(0 <= j < i for j in line.context_from)
            assert line.request.text.strip() and line.request.max_frames >= 1
        if section.task == "clone":  # chunking loses and repeats nothing
            assert _no_space("".join(p.display_text for p in mine)) == _no_space("".join(s.text for s in section.lines))
        if section.task == "dialogue":
            assert [p.display_text for p in mine] == [line.text.strip() for line in section.lines]
    context = global_context(planned)
    keys = _keys(planned, context, model_id="m", codec_id="c")
    again = plan_sections(project, ProjectPlanContext(project, codec_id="codec", encode=None))
    assert _keys(again, global_context(again), model_id="m", codec_id="c") == keys  # keys depend only on inputs
    assert _keys(planned, context, model_id="other", codec_id="c") != keys or not keys


# --- text -------------------------------------------------------------------------------

_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u200b\ufeff]")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_never_leaves_control_characters_or_edge_spaces(text):
    out = normalize_text(text)
    assert not _CONTROLS.search(out)
    assert all(line == line.strip() and line for line in out.split("\n")) or out == ""


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="[]°℉℃", blacklist_categories=("Cs",))))
def test_normalize_keeps_every_letter_and_digit_in_order(text):
    """Outside script markers and temperatures (which spell words out), no letter or digit is added or lost."""
    def alnum(s):
        return [ch for ch in unicodedata.normalize("NFC", s) if ch.isalnum()]

    assert alnum(normalize_text(text)) == alnum(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))), st.integers(1, 60))
def test_chunking_any_text_loses_and_repeats_nothing(text, max_chars):
    chunks = chunk_text(text, max_chars)
    assert all(chunk and chunk == chunk.strip() and len(chunk) <= max_chars for chunk in chunks)
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())


# --- streaming audio ------------------------------------------------------------------------

def _reference_assemble(clips, pauses, fade):
    """The whole-track join, written the plain way."""
    clips = [_faded(np.asarray(c, np.float32), fade) for c in clips]
    starts, cursor = [], 0
    for i, clip in enumerate(clips):
        starts.append(cursor)
        end = cursor + clip.size
        pause = pauses[i] if i < len(pauses) else 0.0
        if pause > 0:
            cursor = end + round(pause * SR)
        elif i < len(clips) - 1:
            cursor = end - min(max(fade, round(-pause * SR)), clip.size)
        else:
            cursor = end
    track = np.zeros(max([cursor] + [s + c.size for s, c in zip(starts, clips)]) if clips else 0, np.float32)
    for start, clip in zip(starts, clips):
        track[start:start + clip.size] += clip
    return track


def _noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)


_clip = st.builds(_noise, st.integers(0, 3000), st.integers(0, 2**32 - 1))


@SOME
@given(st.lists(_clip, max_size=6), st.data(), st.sampled_from([0.0, 1.0, 10.0, 50.0]))
def test_streamed_assembly_equals_the_whole_track(clips, data, crossfade_ms):
    pauses = data.draw(st.lists(st.sampled_from([0.0, 0.01, 0.05, -0.02, -0.2, 0.3]),
                                min_size=max(0, len(clips) - 1), max_size=max(0, len(clips) - 1)))
    pieces = []
    total, spans = assemble_stream(iter(clips), len(clips), pauses, lambda p: pieces.append(p.copy()),
                                   crossfade_ms=crossfade_ms)
    track = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    expected = _reference_assemble(clips, pauses, round(crossfade_ms * SR / 1000))
    assert total == track.size == expected.size
    assert np.array_equal(track, expected)
    assert np.array_equal(assemble(clips, pauses, crossfade_ms=crossfade_ms)[0], expected)
    assert len(spans) == len(clips)


@SOME
@given(st.integers(0, 2**32 - 1), st.floats(0.1, 3.0), st.floats(0.05, 2.0),
       st.lists(st.integers(1, 30000), max_size=5))
def test_streamed_loudness_and_limiting_equal_the_whole_track(seed, seconds, amp, cuts):
    rng = np.random.default_rng(seed)
    x = (amp * rng.standard_normal(int(seconds * SR)) * np.sin(np.linspace(0, 9, int(seconds * SR))) ** 2)
    x = x.astype(np.float32)
    meter = LoudnessMeter()
    bounds = sorted({0, x.size, *(c % (x.size + 1) for c in cuts)})
    for a, b in zip(bounds, bounds[1:]):
        meter.add(x[a:b])
    whole = measure_loudness(x)
    assert (meter.integrated() is None) == (whole is None)
    if whole is not None:
        assert meter.integrated() == pytest.approx(whole, abs=1e-3)
    gain = meter.gain_to(-16.0)
    blocks = np.concatenate(list(master_blocks(lambda lo, hi: x[lo:hi], x.size, gain=gain, peak_db=-1.0,
                                               block=4096)))
    expected = _limit(x.astype(np.float64) * gain, 10 ** (-1 / 20), SR)
    assert np.allclose(blocks, expected, atol=1e-6)
    assert np.allclose(master(x, highpass_hz=None), expected, atol=1e-6)
    assume(x.size > 0)
    assert np.max(np.abs(blocks)) <= 10 ** (-1 / 20)
