"""`higgs serve`'s HTTP API on a real uvicorn server (loopback), with the official `openai` client and httpx."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import threading
import time

import numpy as np
import openai
import pytest
import soundfile as sf
from server_fixtures import API_KEY, ServerThread

from higgs_cli.engine.request import GREEDY, GenerationRequest, Sampling, Turn
from higgs_cli.server.limits import Limits

LIMITS = Limits(max_body_bytes=2 * 1024 * 1024, max_input_chars=300, max_queue=24, max_seconds=20.0)
SHORT = {"max_new_tokens": 25}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from higgs_cli.voices.library import VoiceLibrary

    root = tmp_path_factory.mktemp("server_voices")
    clip = tmp_path_factory.mktemp("clips") / "ref.wav"
    t = np.arange(24_000 * 2) / 24_000
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 24_000)
    library = VoiceLibrary(root)
    library.add("narrator", clip, "A steady tone for reference.")
    return library


@pytest.fixture(scope="module")
def server(tiny_session, library):
    running = ServerThread(tiny_session, limits=LIMITS, library=library)
    yield running
    running.stop()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


def _speech(client, fmt="wav", **extra):
    return client.audio.speech.create(model="tts-1", voice="default", input=extra.pop("input", "Hello there."),
                                      response_format=fmt, extra_body={**SHORT, **extra}).content


def _wav_tone() -> bytes:
    buffer = io.BytesIO()
    t = np.arange(24_000) / 24_000
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24_000, format="WAV")
    return buffer.getvalue()


def test_health_models_and_metrics(server):
    with server.client() as http:
        assert http.get("/health").json()["status"] == "ok"
        models = http.get("/v1/models").json()
        assert {"higgs", "tts-1", server.state.session.name} <= {model["id"] for model in models["data"]}
        text = http.get("/metrics").text
    for name in ("higgs_requests_total", "higgs_queue_length", "higgs_busy_slots", "higgs_frames_per_second"):
        assert f"# TYPE {name}" in text


@pytest.mark.needs_ffmpeg
@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "opus"])
def test_each_format_opens_as_audio(client, fmt):
    data = _speech(client, fmt)
    if fmt in ("wav", "flac"):
        audio, rate = sf.read(io.BytesIO(data))
        assert rate == 24_000 and len(audio) > 0
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate",
                            "-of", "json", "-"], input=data, capture_output=True, check=True)
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == {"wav": "pcm_s16le", "flac": "flac", "mp3": "mp3", "opus": "opus"}[fmt]


def test_pcm_is_the_wav_samples_and_streams(client, server):
    wav = _speech(client, "wav", seed=5)
    pcm = _speech(client, "pcm", seed=5)
    assert wav[44:] == pcm and len(pcm) % 2 == 0
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="default", input="Hello there.", response_format="pcm",
            extra_body={**SHORT, "seed": 5}) as response:
        streamed = b"".join(response.iter_bytes())
    assert streamed == pcm


def test_sse_events_carry_the_audio_then_done(client):
    pcm = _speech(client, "pcm", seed=2, max_new_tokens=60)
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="default", input="Hello there.", response_format="pcm",
            extra_body={"stream_format": "sse", "seed": 2, "max_new_tokens": 60}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1) and len(events) > 2
    assert events[-1]["type"] == "speech.audio.done" and events[-1]["usage"]["output_tokens"] > 0
    assert b"".join(base64.b64decode(e["audio"]) for e in events[:-1]) == pcm


def test_sixteen_concurrent_requests_each_equal_their_solo_result(client):
    bodies = [{"input": f"Line {i} of sixteen.", "seed": i, "temperature": 0.8 if i % 2 else 0.0,
               "max_new_tokens": 10 + 3 * i} for i in range(16)]
    solo = [_speech(client, "wav", **dict(body)) for body in bodies]
    together: dict[int, bytes] = {}

    def send(i):
        together[i] = _speech(client, "wav", **dict(bodies[i]))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [together.get(i) for i in range(16)] == solo
    assert len(set(solo)) == 16


def test_speed_time_stretches(client):
    normal = sf.read(io.BytesIO(_speech(client, "wav", max_new_tokens=50, seed=1)))[0]
    faster = sf.read(io.BytesIO(client.audio.speech.create(
        model="tts-1", voice="default", input="Hello there.", response_format="wav", speed=2.0,
        extra_body={"max_new_tokens": 50, "seed": 1}).content))[0]
    assert abs(len(faster) - len(normal) / 2) < 0.1 * len(normal)


def test_a_library_voice_and_uploaded_references(client, library):
    with_voice = client.audio.speech.create(model="tts-1", voice="narrator", input="Hello there.",
                                            response_format="pcm", extra_body=SHORT).content
    reference = {"audio": base64.b64encode(_wav_tone()).decode(), "transcript": "A short tone."}
    cloned = _speech(client, "pcm", references=[reference])
    plain = _speech(client, "pcm")
    assert len({with_voice, cloned, plain}) == 3  # each prompt is its own


BAD = [
    ({"input": ""}, 400, "input"),
    ({"input": "x" * 301}, 400, "input"),
    ({"voice": "nobody-here"}, 400, "voice"),
    ({"voice": "../../etc/passwd"}, 400, "voice"),
    ({"response_format": "aiff"}, 400, "response_format"),
    ({"speed": 9}, 400, "speed"),
    ({"speed": "fast"}, 400, "speed"),
    ({"temperature": 5}, 400, "temperature"),
    ({"max_new_tokens": 10_000}, 400, "max_new_tokens"),
    ({"model": "gpt-9"}, 404, "model"),
    ({"references": [{"audio": base64.b64encode(b"not audio at all" * 10).decode(), "transcript": "x"}]}, 400,
     "references[0].audio"),
    ({"references": [{"audio": "%%% not base64", "transcript": "x"}]}, 400, "references[0].audio"),
    ({"references": [{"audio": base64.b64encode(_wav_tone()).decode()}]}, 400, "references[0].transcript"),
]


@pytest.mark.parametrize("change, status, param", BAD)
def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server, change, status, param):
    body = {"model": "tts-1", "input": "Hello.", "voice": "default", **SHORT, **change}
    with server.client() as http:
        response = http.post("/v1/audio/speech", json=body)
        assert response.status_code == status
        error = response.json()["error"]
        assert error["param"] == param and error["message"] and error["type"]
        assert http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Fine.", **SHORT}).status_code == 200


def test_wrong_key_malformed_json_oversized_body_and_unknown_paths(server):
    with server.client() as http:
        for headers, code in (({"Authorization": "Bearer wrong-key-000000"}, "invalid_api_key"),
                              ({"Authorization": ""}, "missing_api_key")):
            response = http.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi"}, headers=headers)
            assert response.status_code == 401 and response.json()["error"]["code"] == code
        response = http.post("/v1/audio/speech", content=b"{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
        response = http.post("/v1/audio/speech", content=b"[" + b" " * (3 * 1024 * 1024) + b"]",
                             headers={"Content-Type": "application/json"})
        assert response.status_code == 413 and "error" in response.json()
        assert http.get("/v1/nothing").status_code == 404 and http.get("/v1/nothing").json()["error"]
        assert http.get("/v1/audio/speech").status_code == 405
        assert "access-control-allow-origin" not in http.get("/health", headers={"Origin": "https://x.test"}).headers
        assert http.get("/health").json()["status"] == "ok"


def test_openai_client_raises_its_own_error_types(client):
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi")
    assert "unknown voice 'nobody'" in bad.value.message
    wrong = openai.OpenAI(base_url=client.base_url, api_key="wrong-key-000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.audio.speech.create(model="tts-1", voice="default", input="Hi")


def test_a_full_queue_answers_429_with_retry_after(server):
    jobs = [{"text": f"line {i}", "max_frames": 5} for i in range(server.scheduler.slots + LIMITS.max_queue + 1)]
    with server.client() as http:
        response = http.post("/higgs/v1/generate", json={"jobs": jobs})
        assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "queue_full"


def _busy(server) -> int:
    return server.scheduler.stats()["busy_slots"] + server.scheduler.stats()["queue_length"]


def test_a_client_killed_mid_stream_frees_its_slot(server, client):
    body = json.dumps({"model": "tts-1", "input": "A long line that goes on.", "response_format": "pcm",
                       "max_new_tokens": 500, "temperature": 0.0, "ras_window": 0}).encode()
    cancelled = server.scheduler.stats()["cancelled_total"]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
    deadline = time.monotonic() + 30
    while _busy(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _busy(server) == 0
    assert server.scheduler.stats()["cancelled_total"] == cancelled + 1
    assert len(_speech(client, "pcm")) > 0


def test_native_endpoints_equal_in_process_generation(server, tiny_session):
    from higgs_cli.sessions.client import RemoteSession

    voice = Turn("A reference.", codes=np.random.default_rng(1).integers(0, 1024, size=(8, 30)))
    heard = Turn("Heard before.", audio=(0.2 * np.sin(np.arange(12_000) / 7)).astype(np.float32))
    requests = [GenerationRequest(text="With a voice.", history=(voice,), seed=4, max_frames=20),
                GenerationRequest(text="With audio history.", history=(heard,), sampling=GREEDY, max_frames=15),
                GenerationRequest(text="Sampled.", scene="a quiet room", sampling=Sampling(top_k=40), seed=9,
                                  max_frames=30)]
    remote = RemoteSession.connect(server.url, api_key=API_KEY)
    assert (remote.name, remote.model_id, remote.codec_id) == (tiny_session.name, tiny_session.model_id,
                                                                tiny_session.codec_id)
    frames: list[int] = []
    got = remote.generate(requests, batch_size=3, progress=frames.append)
    want = tiny_session.generate(requests, batch_size=3)
    for a, b in zip(got, want):
        assert np.array_equal(a.codes, b.codes) and np.array_equal(a.audio, b.audio) and a.finished == b.finished
    assert sum(frames) >= sum(r.frames for r in want)
    streamed = list(remote.stream(requests[2]))
    local = list(tiny_session.stream(requests[2]))
    assert len(streamed) == len(local) and all(np.array_equal(a, b) for a, b in zip(streamed, local))
    clip = heard.audio
    assert np.array_equal(remote.encode_audio(clip), tiny_session.encode_audio(clip))
    assert np.array_equal(remote.decode(want[0].codes), tiny_session.decode(want[0].codes))


def test_native_job_errors_name_the_field(server):
    from higgs_cli.errors import UsageError
    from higgs_cli.sessions.client import RemoteSession

    remote = RemoteSession.connect(server.url, api_key=API_KEY)
    with pytest.raises(UsageError, match="max_frames"):
        remote.generate([GenerationRequest(text="Too long.", max_frames=100_000)])
    with server.client() as http:
        bad_codes = {"dtype": "int16", "shape": [8, 2], "b64": base64.b64encode(b"\xff\x7f" * 16).decode()}
        response = http.post("/higgs/v1/generate", json={"jobs": [{"text": "x", "history": [
            {"text": "t", "codes": bad_codes}]}]})
        assert response.status_code == 400 and "0..1025" in response.json()["error"]["message"]


def test_binding_beyond_loopback_needs_a_key():
    from higgs_cli.errors import UsageError
    from higgs_cli.server.run import ServeOptions, check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    with pytest.raises(UsageError, match="without an API key"):
        check_bind(ServeOptions(host="0.0.0.0"))
    check_bind(ServeOptions(host="0.0.0.0", api_key=API_KEY))
    with pytest.raises(UsageError, match="shorter"):
        check_bind(ServeOptions(api_key="short"))


def test_a_request_past_the_time_limit_is_cancelled_with_504(tiny_session, server):
    from dataclasses import replace

    quick = ServerThread(tiny_session, limits=replace(LIMITS, request_timeout=0.05), api_key=None)
    try:
        with quick.client() as http:
            response = http.post("/v1/audio/speech", json={
                "model": "tts-1", "input": "Slow.", "response_format": "flac", "max_new_tokens": 500,
                "temperature": 0.0, "ras_window": 0})
            assert response.status_code == 504 and response.json()["error"]["code"] == "timeout"
            deadline = time.monotonic() + 30
            while _busy(quick) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _busy(quick) == 0
    finally:
        quick.stop()


@pytest.mark.slow
def test_the_client_side_of_the_server_loads_no_torch():
    import sys

    code = ("import sys, higgs_cli.sessions.client, higgs_cli.sessions.connect, higgs_cli.server.app, "
            "higgs_cli.cli.serve; sys.exit(any(m in sys.modules for m in ('torch', 'transformers')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_remote_session_is_a_session(server):
    from higgs_cli.engine.api import Session
    from higgs_cli.sessions.client import RemoteSession

    assert isinstance(RemoteSession.connect(server.url, api_key=API_KEY), Session)


def test_cors_only_for_the_origins_asked_for_and_the_x_api_key_header(server):
    from starlette.testclient import TestClient

    from higgs_cli.server.app import build_app

    with TestClient(build_app(server.state, cors_origins=["https://studio.test"])) as http:
        allowed = http.options("/v1/audio/speech", headers={"Origin": "https://studio.test",
                                                            "Access-Control-Request-Method": "POST"})
        assert allowed.headers["access-control-allow-origin"] == "https://studio.test"
        other = http.options("/v1/audio/speech", headers={"Origin": "https://elsewhere.test",
                                                          "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        assert http.get("/v1/models", headers={"X-API-Key": API_KEY}).status_code == 200
        assert http.get("/v1/models").status_code == 401


def test_a_format_or_speed_this_machine_cannot_make_is_a_clear_400(server, monkeypatch):
    from higgs_cli.server import audio as server_audio

    monkeypatch.setattr(server_audio, "encodable", lambda: ("wav", "flac", "pcm"))
    monkeypatch.setattr(server_audio, "can_stretch", lambda: False)
    with server.client() as http:
        base = {"model": "tts-1", "input": "Hi.", **SHORT}
        opus = http.post("/v1/audio/speech", json={**base, "response_format": "opus"})
        assert opus.status_code == 400 and opus.json()["error"]["code"] == "unsupported_format"
        assert "wav, flac, pcm" in opus.json()["error"]["message"]
        fast = http.post("/v1/audio/speech", json={**base, "response_format": "wav", "speed": 1.5})
        assert fast.status_code == 400 and "ffmpeg" in fast.json()["error"]["message"]
        assert http.post("/v1/audio/speech", json={**base, "response_format": "wav"}).status_code == 200
