"""One voice resolver (voices/reference_turn.py): `say`, a project and the server send a voice alike.

The transcript below is the kind the three used to disagree on (curly quotes, a script marker, no
final period): `say` and the server normalized it, a project only stripped it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from fakes import make_project, section, write_voice

from higgs_cli.engine.request import DEFAULT_SEED, FRAME_RATE, Sampling, Turn
from higgs_cli.voices.reference_turn import (
    ResolvedVoice,
    VoiceChoice,
    library_voice,
    reference_text,
    reference_turn,
    resolve_choice,
)

TRANSCRIPT = "He said “hi there” [laugh] and left"
TEXT = "Good morning, everyone."
SECONDS = 0.6  # greedy on random weights runs to the length limit: keep it short


def test_a_reference_transcript_is_sent_as_written_only_its_ends_stripped():
    # Boson's examples/generation.py: `prompt_text = f.read().strip()`, no normalization.
    assert reference_text(f"  {TRANSCRIPT}\n") == TRANSCRIPT
    assert reference_text("你好，世界") == "你好，世界"  # no punctuation rewrite, no final period


def test_every_kind_of_voice_gets_the_same_transcript_rule(tmp_path):
    from higgs_cli.voices.library import VoiceLibrary

    library = VoiceLibrary(tmp_path / "lib")
    library.add("ana", write_voice(tmp_path / "a.wav"), f" {TRANSCRIPT} ")
    encode = lambda audio: np.zeros((8, 5), dtype=np.int64)  # noqa: E731
    named = reference_turn(resolve_choice(VoiceChoice("ana"), library), codec_id="c", encode=encode,
                           library=library)
    from_file = reference_turn(resolve_choice(VoiceChoice(str(tmp_path / "a.wav"), f"{TRANSCRIPT}\n"), library))
    known = reference_turn(ResolvedVoice(TRANSCRIPT + " ", codes=np.zeros((8, 5), dtype=np.int64)))
    assert named.text == from_file.text == known.text == TRANSCRIPT
    assert named.codes.shape == (8, 5) and from_file.audio is not None and from_file.codes is None
    # a transcript given with a library voice replaces the stored one
    assert library_voice("ana", library, transcript="Other words.").transcript == "Other words."
    with pytest.raises(ValueError, match="codec id"):
        reference_turn(library_voice("ana", library))


def test_cached_work_is_keyed_by_the_transcript_the_prompt_carries():
    """A `say --input-file` row or a project line made when the transcript was normalized is not
    reused for the transcript as written; a transcript that differs only at its ends keeps its key."""
    from higgs_cli.batch.render import _voice_id
    from higgs_cli.engine.text import normalize_text

    audio = np.full(24_000, 0.1, dtype=np.float32)
    as_sent = _voice_id(ResolvedVoice(TRANSCRIPT, audio=audio), None)
    assert _voice_id(ResolvedVoice(normalize_text(TRANSCRIPT), audio=audio), None) != as_sent
    assert _voice_id(ResolvedVoice(f"  {TRANSCRIPT}\n", audio=audio), None) == as_sent

    # a project line: its render cache key holds each reference turn's text as sent
    from higgs_cli.engine.request import GenerationRequest
    from higgs_cli.project.folder.store import line_key

    codes = np.zeros((8, 5), dtype=np.int64)

    def key(transcript: str) -> str:
        turn = reference_turn(ResolvedVoice(transcript, codes=codes))
        return line_key(GenerationRequest(TEXT, history=(turn,)), model_id="m", codec_id="c")

    assert key(TRANSCRIPT) != key(normalize_text(TRANSCRIPT)) and key(f" {TRANSCRIPT} ") == key(TRANSCRIPT)


class _Recording:
    """A session that records the requests it generates and their results (everything else: the session's)."""

    def __init__(self, session) -> None:
        self._session = session
        self.requests: list = []
        self.results: list = []

    def __getattr__(self, name: str):
        return getattr(self._session, name)

    def generate(self, requests, **options):
        out = self._session.generate(requests, **options)
        self.requests += list(requests)
        self.results += list(out)
        return out


def _prompt_ids(session, request) -> list[int]:
    [job] = session._jobs([request])
    return list(np.asarray(job.prompt.input_ids).reshape(-1))


@pytest.mark.slow
def test_say_a_project_and_the_server_build_the_same_prompt_and_codes_for_a_voice(tiny_session, tmp_path):
    """`higgs say --voice X`, a project speaker with `voice: X`, and a server request with voice X."""
    from server_fixtures import ServerThread

    from higgs_cli import speech
    from higgs_cli.plugins.script import Speaker
    from higgs_cli.project.building.render import render_project
    from higgs_cli.voices.library import VoiceLibrary

    library = VoiceLibrary()  # the default library ($HIGGS_HOME/voices), as each command finds it
    library.add("tone", write_voice(tmp_path / "tone.wav", seconds=1.0), TRANSCRIPT)
    greedy = Sampling(temperature=0.0)

    # higgs say "..." --voice tone --temperature 0
    say = _Recording(tiny_session)
    job = speech.SayJob(TEXT, tmp_path / "say.wav", voice=VoiceChoice("tone"), sampling=greedy,
                        max_seconds=SECONDS)
    speech.run(speech.prepare(job), say)
    [said] = say.requests

    # a project line spoken by a speaker with `voice: tone`
    project = make_project(tmp_path / "show", [section("intro", "clone", ("x", TEXT))],
                           speakers={"x": Speaker("x", voice="tone")})
    project = replace(project, defaults=replace(project.defaults, sampling=greedy, max_seconds=SECONDS))
    rendered = _Recording(tiny_session)
    render_project(project, rendered)
    [line] = rendered.requests

    # POST /v1/audio/speech with voice "tone"
    server = ServerThread(tiny_session, library=library)
    tickets = []
    submit_many = server.scheduler.submit_many
    server.scheduler.submit_many = lambda requests: tickets.extend(submit_many(requests)) or tickets[-len(requests):]
    try:
        with server.client() as client:
            answer = client.post("/v1/audio/speech", json={
                "model": "tts-1", "input": TEXT, "voice": "tone", "response_format": "wav", "temperature": 0,
                "seed": DEFAULT_SEED, "max_new_tokens": round(SECONDS * FRAME_RATE)})
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    [ticket] = tickets

    for request in (said, line, ticket.request):
        [turn] = request.history
        assert isinstance(turn, Turn) and turn.text == TRANSCRIPT  # as written: no period, no rewrite
    prompt = _prompt_ids(tiny_session, said)
    assert _prompt_ids(tiny_session, line) == prompt
    assert list(np.asarray(ticket.job.prompt.input_ids).reshape(-1)) == prompt
    codes = say.results[0].codes
    assert codes.size and np.array_equal(rendered.results[0].codes, codes)
    assert np.array_equal(ticket.codes(), codes)
