"""`higgs serve` as a process, the deployment details of issue 34: after SIGTERM new requests get 503
with Retry-After and /health says "draining" until the running request finishes; a wrong key is
reported as wrong; `higgs --json --version` is JSON; a voice alias to no voice is refused up front."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from biased_models import biased_eos_model
from procs import REPO, TESTS
from server_fixtures import API_KEY, ServerThread, free_port

pytestmark = pytest.mark.slow


def _env(home) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{TESTS}", "HIGGS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name in ("HIGGS_SERVER", "HIGGS_MODEL", "HIGGS_API_KEY"):
        env.pop(name, None)
    return env


def test_sigterm_drains_new_requests_503_health_draining_running_one_finishes(tiny_model, tmp_path):
    model = biased_eos_model(tiny_model, tmp_path / "endless", -50.0)  # a request runs all its frames
    proc = subprocess.Popen([sys.executable, "-m", "higgs_cli", "--json", "serve", "--model", str(model), "--port",
                             str(free_port()), "--max-batch", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(tmp_path / "home"), cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        url = json.loads(line)["url"]
        answers: list[httpx.Response] = []
        frames = 100

        def ask() -> None:
            answers.append(httpx.post(url + "/v1/audio/speech", json={
                "model": "tts-1", "input": "Draining.", "response_format": "pcm", "max_new_tokens": frames},
                timeout=120, trust_env=False))

        asker = threading.Thread(target=ask)
        asker.start()
        deadline = time.monotonic() + 60
        while "higgs_busy_slots 1" not in httpx.get(url + "/metrics", trust_env=False).text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert httpx.get(url + "/health", trust_env=False).json()["status"] == "draining"
        refused = httpx.post(url + "/v1/audio/speech", json={"model": "tts-1", "input": "Late.",
                                                             "max_new_tokens": 5}, trust_env=False)
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
        assert refused.json()["error"]["code"] == "shutting_down"
        assert asker.is_alive()  # the running request is still being served
        asker.join(120)
        assert proc.wait(60) == 0, proc.stderr.read()
        assert answers[0].status_code == 200 and len(answers[0].content) == frames * 960 * 2
    finally:
        if proc.poll() is None:
            proc.kill()


def test_json_version_is_json():
    done = subprocess.run([sys.executable, "-m", "higgs_cli", "--json", "--version"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0 and set(json.loads(done.stdout)) == {"version"}


def test_a_wrong_key_is_reported_as_wrong_not_missing(tiny_session):
    from higgs_cli.errors import UsageError
    from higgs_cli.sessions.client import RemoteSession

    server = ServerThread(tiny_session)
    try:
        with pytest.raises(UsageError) as wrong:
            RemoteSession.connect(server.url, api_key="not-the-key-0000")
        assert "refused the API key" in wrong.value.message and "needs an API key" not in wrong.value.message
        with server.client() as http:
            missing = http.get("/v1/models", headers={"Authorization": ""})
            assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
        RemoteSession.connect(server.url, api_key=API_KEY).close()
    finally:
        server.stop()


def test_a_voice_alias_to_no_voice_is_refused_before_the_model_loads(tmp_path):
    done = subprocess.run([sys.executable, "-m", "higgs_cli", "serve", "--model", str(tmp_path / "none"),
                           "--voice-alias", "alloy=nobody"], capture_output=True, text=True, cwd=REPO,
                          env=_env(tmp_path / "home"), timeout=60)
    assert done.returncode == 2 and "alloy=nobody" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "voices.txt"
    bad.write_text("alloy belinda\n")
    done = subprocess.run([sys.executable, "-m", "higgs_cli", "serve", "--model", str(tmp_path / "none"),
                           "--voices-file", str(bad)], capture_output=True, text=True, cwd=REPO,
                          env=_env(tmp_path / "home"), timeout=60)
    assert done.returncode == 2 and "voices.txt:1" in done.stderr


def test_voice_aliases_parse_from_flags_and_a_file(tmp_path):
    from higgs_cli.server.names import parse_aliases

    voices = tmp_path / "voices.txt"
    voices.write_text("# OpenAI names to ours\nalloy = belinda\nonyx=narrator  # deep\n\n")
    assert parse_aliases(["nova=maya"], voices) == {"nova": "maya", "alloy": "belinda", "onyx": "narrator"}
