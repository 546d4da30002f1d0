"""The bad-input classes through every door of `higgs serve`: text that is not text (a lone
surrogate), numbers that are not numbers (NaN, Infinity, 1e400), JSON nested too deep. Each is a
400 in OpenAI's error shape naming what was refused, never a 500, and the server keeps serving.

A new endpoint or field that takes text or numbers gets a row in TEXT_DOORS or NUMBER_DOORS.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import soundfile as sf
from server_fixtures import ServerThread

from higgs_cli.server.limits import Limits

pytestmark = pytest.mark.slow

MARK = "@@BAD@@"  # replaced by the raw JSON of the bad value
SURROGATES = ['"\\ud800"', '"a\\udfffb"', '"\\udc00\\ud800"']  # lone surrogates, as JSON escapes
NOT_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 5_000]


def _clip() -> str:
    buffer = io.BytesIO()
    t = np.arange(24_000) / 24_000
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24_000, format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


def _speech(**fields) -> tuple[str, dict]:
    return "/v1/audio/speech", {"model": "tts-1", "input": "Hello.", "max_new_tokens": 5, **fields}


def _generate(**job) -> tuple[str, dict]:
    return "/higgs/v1/generate", {"jobs": [{"text": "Hello.", "max_frames": 5, **job}]}


def _stream(**job) -> tuple[str, dict]:
    return "/higgs/v1/stream", {"job": {"text": "Hello.", "max_frames": 5, **job}}


TEXT_DOORS = {
    "speech input": _speech(input=MARK),
    "speech instructions": _speech(instructions=MARK),
    "speech voice": _speech(voice=MARK),
    "speech model": _speech(model=MARK),
    "speech reference transcript": _speech(references=[{"audio": _clip(), "transcript": MARK}]),
    "speech response_format": _speech(response_format=MARK),
    "a key": ("/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "extra": {MARK: 1}}),
    "native job text": _generate(text=MARK),
    "native job scene": _generate(scene=MARK),
    "native job system": _generate(system=MARK),
    "native history text": _generate(history=[{"text": MARK, "audio": None, "codes": {
        "dtype": "int16", "shape": [8, 1], "b64": base64.b64encode(bytes(16)).decode()}}]),
    "native stream text": _stream(text=MARK),
    "encode audio dtype": ("/higgs/v1/encode", {"audio": {"dtype": MARK, "shape": [1], "b64": "AAAAAA=="}}),
}
NUMBER_DOORS = {
    **{f"speech {key}": _speech(**{key: MARK}) for key in
       ("top_k", "seed", "ras_window", "ras_max_repeat", "temperature", "top_p", "speed", "max_new_tokens")},
    **{f"native sampling {key}": _generate(sampling={key: MARK}) for key in
       ("top_k", "ras_window", "ras_max_repeat", "temperature")},
    "native seed": _generate(seed=MARK),
    "native max_frames": _generate(max_frames=MARK),
    "native batch_size": ("/higgs/v1/generate", {"jobs": [{"text": "Hi.", "max_frames": 5}], "batch_size": MARK}),
    "native stream seed": _stream(seed=MARK),
    "stream chunk_frames": ("/higgs/v1/stream", {"job": {"text": "Hi.", "max_frames": 5}, "chunk_frames": MARK}),
}


@pytest.fixture(scope="module")
def server(tiny_session):
    running = ServerThread(tiny_session, api_key=None, limits=Limits(max_body_bytes=2 * 1024 * 1024))
    yield running
    running.stop()


def _post(server, path: str, body: dict, raw: str):
    text = json.dumps(body).replace(json.dumps(MARK), raw)
    with server.client() as http:
        return http.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


def _refused(response, words: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error", error


@pytest.mark.parametrize("raw", SURROGATES)
@pytest.mark.parametrize("door", list(TEXT_DOORS))
def test_a_lone_surrogate_is_a_400_at_every_door(server, door, raw):
    path, body = TEXT_DOORS[door]
    _refused(_post(server, path, body, raw), "lone surrogate")


@pytest.mark.parametrize("raw", NOT_NUMBERS)
@pytest.mark.parametrize("door", list(NUMBER_DOORS))
def test_a_number_that_is_not_a_number_is_a_400_at_every_door(server, door, raw):
    path, body = NUMBER_DOORS[door]
    _refused(_post(server, path, body, raw), "number")


@pytest.mark.parametrize("depth", [40, 5_000, 200_000])
def test_deeply_nested_json_is_a_400(server, depth):
    _refused(_post(server, "/v1/audio/speech", {"model": "tts-1", "input": MARK}, "[" * depth + "]" * depth), "nest")


def test_the_server_still_serves_after_the_bad_input(server):
    with server.client() as http:
        assert http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Fine.", "max_new_tokens": 5,
                                                   "response_format": "wav"}).status_code == 200
        assert not [key for key in server.state.responses if key[1] >= 500]
