"""`higgs serve` as a process: it advertises itself; `say` and `project render` use it without torch and
write what an in-process run writes; SIGTERM drains it; stale entries and wrong servers are handled."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from procs import REPO, TESTS
from server_fixtures import free_port

NO_TORCH = ("import sys, json\n"
            "from higgs_cli.cli.app import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "loaded = sorted(m for m in ('torch', 'transformers', 'torchaudio') if m in sys.modules)\n"
            "sys.stderr.write('\\nLOADED=' + json.dumps(loaded) + '\\n')\n"
            "sys.exit(code)\n")


def _env(home: Path, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{TESTS}", "HIGGS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("HIGGS_SERVER", None)
    env.pop("HIGGS_MODEL", None)
    return {**env, **extra}


def _start_server(model: Path, home: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "higgs_cli", "--json", "serve", "--model", str(model), "--port",
                             str(free_port()), "--max-batch", "4", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(home), cwd=REPO)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"higgs serve did not start: {proc.stderr.read()}")
    return proc, json.loads(line)["url"]


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    home = tmp_path_factory.mktemp("served_home")
    proc, url = _start_server(tiny_model, home)
    yield home, url, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


@pytest.fixture
def home(served, monkeypatch):
    monkeypatch.setenv("HIGGS_HOME", str(served[0]))
    return served[0]


def _client_run(home: Path, *args) -> subprocess.CompletedProcess:
    """`higgs ARGS` in a fresh process that reports which heavy modules it loaded."""
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *map(str, args)], capture_output=True, text=True,
                          env=_env(home), cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED=[]" in done.stderr, done.stderr  # no torch, no transformers: no model in the client
    return done


@pytest.mark.slow
def test_serve_advertises_itself(served):
    home, url, proc = served
    [entry] = [json.loads(p.read_text()) for p in (home / "servers").glob("*.json")]
    assert entry["url"] == url and entry["pid"] == proc.pid and entry["model_id"]
    assert httpx.get(url + "/health", trust_env=False).json()["status"] == "ok"


@pytest.mark.parametrize("stream", [False, True])
def test_say_through_the_server_equals_in_process(cli, home, tiny_model, tmp_path, stream):
    flags = ["--seed", "3", "--max-seconds", "1.5", *(["--stream"] if stream else [])]
    remote = _client_run(home, "--json", "say", "Hello from the server.", "-o", tmp_path / "remote.wav", *flags)
    data = json.loads(remote.stdout)
    assert data["session"]["kind"] == "server" and "using the higgs server" not in remote.stdout
    local = cli("--json", "say", "Hello from the server.", "-o", tmp_path / "local.wav", "--model", tiny_model,
                "--no-server", *flags)
    assert local.exit_code == 0, local.output
    assert json.loads(local.stdout)["session"]["kind"] == "in-process"
    assert (tmp_path / "remote.wav").read_bytes() == (tmp_path / "local.wav").read_bytes()


SMALL_PROJECT = """\
version: 1
title: Served
defaults: {seed: 5, max_seconds: 1}
output: {format: wav}
speakers:
  maya: {audio: voices/maya.wav, transcript_file: voices/maya.txt}
script:
  - id: talk
    task: dialogue
    lines:
      - maya: First line through the server.
      - maya: And a second one, a little longer.
      - speaker: maya
        text: A third with its own seed.
        seed: 9
"""


def _small_project(folder: Path) -> None:
    """A three-line dialogue whose speaker's recording the server encodes on request."""
    (folder / "voices").mkdir(parents=True)
    for name in ("maya.wav", "maya.txt"):
        shutil.copy(REPO / "projects" / "podcast" / "voices" / name, folder / "voices" / name)
    (folder / "project.yaml").write_text(SMALL_PROJECT, encoding="utf-8")


def test_render_through_the_server_equals_in_process(cli, home, tiny_model, tmp_path):
    remote_project, local_project = tmp_path / "remote", tmp_path / "local"
    for folder in (remote_project, local_project):
        _small_project(folder)
    remote = _client_run(home, "--json", "project", "render", remote_project, "--model", tiny_model)
    assert json.loads(remote.stdout)["session"]["kind"] == "server"
    local = cli("--json", "project", "render", local_project, "--model", tiny_model, "--no-server")
    assert local.exit_code == 0, local.output
    masters = [sorted((p / "build").glob("*.wav")) for p in (remote_project, local_project)]
    assert masters[0] and [m.name for m in masters[0]] == [m.name for m in masters[1]]
    for a, b in zip(*masters):
        assert np.array_equal(sf.read(a)[0], sf.read(b)[0]), a.name
    again = _client_run(home, "--json", "project", "render", remote_project, "--model", tiny_model)
    assert json.loads(again.stdout)["generated"] == 0  # the cache stays client-side


@pytest.mark.slow
def test_takes_through_the_server_are_keyed_with_its_model(home, served, tmp_path):
    """`project takes --count` opens its session as render does: through the server, with no torch
    here, its takes keyed with the model the server serves."""
    folder = tmp_path / "show"
    _small_project(folder)
    remote = _client_run(home, "--json", "project", "takes", folder, "talk:1", "--count", "2", "--server", served[1])
    made = json.loads(remote.stdout)
    assert made["session"]["kind"] == "server" and [t["cached"] for t in made["takes"]] == [True, True]
    [entry] = [json.loads(p.read_text()) for p in (home / "servers").glob("*.json")]
    takes = json.loads((folder / ".higgs" / "takes.json").read_text())
    assert {t["model_id"] for record in takes.values() for t in record["takes"]} == {entry["model_id"]}


@pytest.mark.slow
def test_a_server_for_another_model_is_refused_clearly(cli, served, tmp_path):
    result = cli("say", "Hi.", "-o", tmp_path / "x.wav", "--server", served[1], "--model", tmp_path / "other")
    assert result.exit_code == 2 and "serves" in result.stderr and "--no-server" in result.stderr


def test_an_unreachable_server_is_a_clear_error(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HIGGS_SERVER", f"http://127.0.0.1:{free_port()}")
    result = cli("say", "Hi.", "-o", tmp_path / "x.wav")
    assert result.exit_code == 1 and "cannot reach the higgs server" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "x.wav").exists()


def test_a_stale_advert_is_ignored_and_swept(cli, tiny_model, tmp_path, _isolated_home):
    servers = _isolated_home / "servers"
    servers.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = servers / f"{dead.stdout.strip()}.json"
    stale.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": int(dead.stdout), "model": str(tiny_model),
                                 "model_id": "x", "codec_id": "y", "needs_key": False, "started": 0}))
    result = cli("--json", "say", "Hi.", "-o", tmp_path / "x.wav", "--model", tiny_model, "--max-seconds", "0.5")
    assert result.exit_code == 0 and json.loads(result.stdout)["session"]["kind"] == "in-process"
    assert not stale.exists()


@pytest.mark.slow
def test_refuses_a_public_address_without_a_key_before_loading(tmp_path):
    done = subprocess.run([sys.executable, "-m", "higgs_cli", "serve", "--host", "0.0.0.0", "--model",
                           str(tmp_path / "none")], capture_output=True, text=True, env=_env(tmp_path), cwd=REPO,
                          timeout=60)
    assert done.returncode == 2 and "without an API key" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_sigterm_lets_a_running_request_finish_then_exits_0(served):
    """Last in the file: it stops the module's server (the fixture's teardown then has nothing to do)."""
    home, url, proc = served
    answers: list[httpx.Response] = []

    def ask() -> None:
        answers.append(httpx.post(url + "/v1/audio/speech", json={
            "model": "tts-1", "input": "Draining.", "response_format": "wav", "max_new_tokens": 100,
            "temperature": 0.0, "ras_window": 0}, timeout=60, trust_env=False))

    asker = threading.Thread(target=ask)
    asker.start()
    deadline = time.monotonic() + 30
    while "higgs_busy_slots 1" not in httpx.get(url + "/metrics", trust_env=False).text:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    asker.join(60)
    assert proc.wait(60) == 0, proc.stderr.read()
    assert answers and answers[0].status_code == 200 and len(sf.read(io.BytesIO(answers[0].content))[0]) > 0, \
        proc.stderr.read()
    assert not list((home / "servers").glob("*.json"))
