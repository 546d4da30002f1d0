"""The Dockerfile's promises that can be checked without building the image (no Docker engine runs here).

The base image agrees with the CUDA that the pinned torch wheel brings, the image runs as a non-root user
under an init, exposes the server's port, installs the extras the docs promise, and its entry point and
health check run as written.
"""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        joined.append(current.strip())
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def _one(name: str) -> str:
    found = [args for instruction, args in _instructions() if instruction == name]
    assert found, f"the Dockerfile has no {name}"
    return found[-1]


def _exec_form(args: str) -> list[str]:
    import json

    return json.loads(args)


def _wheel_cuda() -> str | None:
    """The CUDA version the installed torch wheel brings as packages (None for a CPU-only wheel)."""
    for requirement in metadata.requires("torch") or []:
        match = re.match(r"cuda-toolkit\b.*==\s*(\d+\.\d+)", requirement)
        if match:
            return match.group(1)
    return None


def test_the_image_installs_the_torch_this_project_pins():
    pinned = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)
    assert metadata.version("torch").split("+")[0] == pinned


def test_the_base_image_agrees_with_the_torch_wheel():
    base = _one("FROM").split()[0]
    cuda = _wheel_cuda()
    match = re.match(r"nvidia/cuda:(\d+)\.(\d+)", base)
    if match:  # a CUDA base must be the wheel's own CUDA, or the wheel's libraries and the base's disagree
        assert cuda is not None and match.group(1) == cuda.split(".")[0], f"{base} against torch's CUDA {cuda}"
    else:  # a plain base: the wheel must bring its CUDA libraries itself, and the comment must say which
        assert cuda is not None, "a CPU-only torch wheel in a GPU image"
        text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
        assert f"CUDA {cuda}" in text, f"the Dockerfile's comment should name the wheel's CUDA {cuda}"


def test_the_image_runs_as_a_user_under_an_init_and_exposes_the_servers_port():
    from higgs_cli.server.limits import DEFAULT_PORT

    assert _one("USER") not in ("root", "0")
    entry = _exec_form(_one("ENTRYPOINT"))
    assert entry[0].endswith("tini") and entry[-1] == "higgs"
    assert "tini" in _one("RUN") or any("tini" in args for name, args in _instructions() if name == "RUN")
    assert _one("EXPOSE").split() == [str(DEFAULT_PORT)]
    command = _exec_form(_one("CMD"))
    assert command[:1] == ["serve"] and command[command.index("--port") + 1] == str(DEFAULT_PORT)
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_the_image_installs_the_extras_the_docs_promise():
    install = next(args for name, args in _instructions() if name == "RUN" and "pip install" in args)
    extras = re.search(r'"\.\[([\w,]+)\]"', install).group(1).split(",")
    declared = metadata.metadata("higgs-cli").get_all("Provides-Extra") or []
    assert {"ray", "s3"} <= set(extras) <= set(declared)


@pytest.mark.slow
def test_the_entry_point_refuses_to_listen_everywhere_without_a_key():
    """The image's default command, run as written: without $HIGGS_API_KEY it stops before loading a model."""
    command = _exec_form(_one("CMD"))
    env = {k: v for k, v in os.environ.items() if k != "HIGGS_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "higgs_cli", *command], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "API key" in result.stderr and "HIGGS_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


def _health_check(port: int) -> int:
    """Run the HEALTHCHECK command as written, its port swapped for the test server's."""
    words = _exec_form(re.sub(r"^.*?CMD\s+", "", _one("HEALTHCHECK")))
    assert words[0] == "python3"
    words = [sys.executable, *[w.replace(":8000/", f":{port}/") for w in words[1:]]]
    return subprocess.run(words, capture_output=True, timeout=60).returncode


@pytest.mark.slow
def test_the_health_check_passes_on_a_healthy_server_and_fails_otherwise():
    from higgs_cli.server.limits import DEFAULT_PORT

    assert f":{DEFAULT_PORT}/health" in _one("HEALTHCHECK")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert _health_check(port) == 0
        _Health.status = 503  # draining or broken
        assert _health_check(port) != 0
    finally:
        _Health.status = 200
        server.shutdown()
        server.server_close()
    assert _health_check(port) != 0  # nothing listening


def test_the_docs_give_the_container_recipe():
    text = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
    assert "docker run" in text and "HIGGS_API_KEY" in text and "services:" in text
