"""Rendering on a Ray cluster started inside the tests (`ray.init(num_cpus=2)`, two actors on the tiny
checkpoint): the example jingle matches a local render byte for byte, an actor killed mid-render is
restarted and every line still comes back, and the CLI's --ray options and bad input.

One cluster and one RaySession for the module: starting actors (each loads the model) is the slow part.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from higgs_cli.distributed.auth import refresh_ray_config  # noqa: E402
from higgs_cli.distributed.cluster import check_address, import_ray, plan_workers  # noqa: E402
from higgs_cli.distributed.split import assign, decode_groups  # noqa: E402
from higgs_cli.engine.api import Session  # noqa: E402
from higgs_cli.engine.request import GenerationRequest  # noqa: E402
from higgs_cli.errors import UsageError  # noqa: E402
from higgs_cli.plugins.manager import get_tasks  # noqa: E402
from higgs_cli.project.building.render import NullProgress, render_project  # noqa: E402
from higgs_cli.project.folder.store import Store  # noqa: E402
from higgs_cli.project.reading.load import load_project  # noqa: E402
from higgs_cli.sessions.ray_session import RaySession  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLE = Path(__file__).resolve().parents[2] / "projects" / "jingle"  # two scenes: both actors get lines


def _copy(folder: Path) -> Path:
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("build", ".higgs"))
    return folder


def _render(folder: Path, session, **kwargs):
    return render_project(load_project(folder, tasks=get_tasks()), session, tasks=get_tasks(), **kwargs)


AUTH = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
TOKEN = secrets.token_hex(16)  # the module cluster's: nothing read from or written to ~/.ray


@pytest.fixture(scope="module")
def cluster():
    saved = {name: os.environ.pop(name, None) for name in AUTH}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN)
    refresh_ray_config()  # Ray read the environment when it was imported
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value
    refresh_ray_config()


@pytest.fixture(scope="module")
def ray_session(cluster, tiny_model):
    # as the CLI makes it: one thread each for generation (a CPU each), the codec with the local count
    with RaySession(str(tiny_model), workers=2, device="cpu") as session:
        yield session


@pytest.fixture(scope="module")
def local_build(tiny_session, tmp_path_factory):
    folder = _copy(tmp_path_factory.mktemp("local") / "jingle")
    summary = _render(folder, tiny_session)
    return folder, summary


AUDIO_AND_SUBTITLES = {".wav", ".flac", ".mp3", ".m4a", ".srt", ".vtt"}  # not pages naming their own folder


def _files(build: Path) -> dict[str, bytes]:
    found = {p.relative_to(build).as_posix(): p.read_bytes() for p in sorted(build.rglob("*"))
             if p.is_file() and p.suffix in AUDIO_AND_SUBTITLES}
    assert any(name.endswith(".wav") for name in found)
    return found


def _lines(build: Path) -> list[dict]:
    return json.loads((build / "manifest.json").read_text(encoding="utf-8"))["lines"]


def test_a_ray_render_matches_a_local_render_byte_for_byte(ray_session, local_build, tmp_path):
    import torch

    assert isinstance(ray_session, Session) and len({w["pid"] for w in ray_session.workers}) == 2
    # generation on the CPU Ray gives each worker, the codec as a local render here runs it
    assert {(w["threads"], w["codec_threads"]) for w in ray_session.workers} == {(1, torch.get_num_threads())}
    local, local_summary = local_build
    folder = _copy(tmp_path / "jingle")
    summary = _render(folder, ray_session)
    assert (summary.lines, summary.generated) == (local_summary.lines, local_summary.generated) == (3, 3)
    assert summary.model_id == local_summary.model_id and summary.is_random
    assert _files(folder / "build") == _files(local / "build")  # master, stems, subtitles: the same bytes
    assert _lines(folder / "build") == _lines(local / "build")
    ours, theirs = Store(folder), Store(local)
    for line in _lines(local / "build"):
        a, b = ours.get(line["key"]), theirs.get(line["key"])
        assert np.array_equal(a.codes, b.codes) and a.audio.tobytes() == b.audio.tobytes()


def test_an_actor_killed_mid_render_is_replaced_and_every_line_comes_back(ray_session, local_build, tmp_path):
    local, _ = local_build
    victim = ray_session.actors[0]
    before = ray.get(victim.identity.remote())["pid"]

    class KillOnce(NullProgress):
        killed = False

        def frames(self, n):  # the first task back: the other tasks are still queued or running
            if not self.killed:
                ray.kill(victim, no_restart=False)
                self.killed = True

    folder = _copy(tmp_path / "jingle")
    progress = KillOnce()
    summary = _render(folder, ray_session, progress=progress, batch_size=1)  # one task per line
    assert progress.killed and summary.lines == summary.generated == 3
    assert ray.get(victim.identity.remote())["pid"] != before  # Ray restarted it
    lines = _lines(folder / "build")
    assert len(lines) == 3 and not any(line["missing"] for line in lines)
    ours, theirs = Store(folder), Store(local)
    for line in lines:  # codes do not depend on the batch: the local render's, whatever the split
        assert np.array_equal(ours.get(line["key"]).codes, theirs.get(line["key"]).codes)


def test_the_cli_renders_with_ray(cli, ray_session, local_build, tiny_model, tmp_path, fake_sessions):
    fake_sessions.always(ray_session)  # the module's actors: starting two more would double the test's time
    folder = _copy(tmp_path / "jingle")
    result = cli("--json", "project", "render", folder, "--model", tiny_model, "--ray", "auto", "--workers", "2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [(s.ray, s.workers) for s in fake_sessions.specs] == [("auto", 2)] and summary["generated"] == 3
    assert summary["session"]["kind"] == "ray" and summary["session"]["workers"] == 2
    local, _ = local_build
    assert _files(folder / "build") == _files(local / "build")

    again = cli("--json", "project", "render", folder, "--model", tiny_model, "--ray", "auto")
    assert again.exit_code == 0 and json.loads(again.stdout)["model_loaded"] is False  # all cached: no cluster
    assert len(fake_sessions.specs) == 1


def test_say_input_file_with_ray_matches_an_in_process_batch(cli, ray_session, tiny_model, tmp_path, fake_sessions):
    sheet = tmp_path / "lines.csv"
    sheet.write_text("id,text,seed\nhello,Hello there.,1\nbye,Goodbye for now.,2\n", encoding="utf-8")
    from higgs_cli.sessions.open import Notes, RealOpener

    fake_sessions.make = lambda spec: ray_session if spec.ray else RealOpener().load(spec, Notes())
    local = cli("--json", "say", "--input-file", sheet, "--output-dir", tmp_path / "local", "--model", tiny_model,
                "--no-server")
    assert local.exit_code == 0, local.output
    result = cli("--json", "say", "--input-file", sheet, "--output-dir", tmp_path / "ray", "--model", tiny_model,
                 "--ray", "auto")
    assert result.exit_code == 0, result.output
    assert [s.ray for s in fake_sessions.specs] == [None, "auto"] and json.loads(result.stdout)["generated"] == 2
    for name in ("hello.wav", "bye.wav"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    alone = cli("say", "Hi.", "--ray", "auto")
    assert alone.exit_code == 2 and "--ray goes with --input-file" in alone.output


def test_bad_ray_options_are_clear_errors(cli, cluster, tmp_path, monkeypatch):
    result = cli("project", "render", tmp_path, "--workers", "2")
    assert result.exit_code == 2 and "--workers needs --ray" in result.output
    with pytest.raises(UsageError, match="cannot reach the Ray cluster"):
        check_address("127.0.0.1:1")
    with pytest.raises(UsageError, match="not a Ray address"):
        check_address("http://head:8265/x")
    with pytest.raises(UsageError, match="GPU"):
        plan_workers(cluster, 1, "cuda")  # this cluster has none
    with pytest.raises(UsageError, match="free CPU"):
        plan_workers(cluster, 3, "cpu")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(UsageError) as error:
        import_ray()
    assert "higgs-cli[ray]" in str(error.value)


def test_requests_that_share_a_voice_and_scene_stay_together():
    voice = np.zeros((8, 5), dtype=np.int64)
    from higgs_cli.engine.request import Turn

    a = [GenerationRequest(text=f"a{i}", scene="one", history=(Turn("ref", codes=voice),)) for i in range(3)]
    b = [GenerationRequest(text=f"b{i}", scene="two") for i in range(2)]
    requests = [a[0], b[0], a[1], b[1], a[2]]
    shares = assign(requests, 2)
    assert sorted(map(tuple, shares)) == [(0, 2, 4), (1, 3)]
    assert assign(requests, 1) == [[0, 1, 2, 3, 4]]
    narrator = [GenerationRequest(text=f"n{i}", scene="book") for i in range(8)]  # one voice, one scene
    assert sorted(map(tuple, assign(narrator, 2))) == [(0, 1, 2, 3), (4, 5, 6, 7)]  # both workers busy
    assert sorted(len(share) for share in assign(narrator, 3)) == [2, 3, 3]
    assert decode_groups([10, 20, 10, 10], batch_size=2) == [[0, 2], [3], [1]]


@pytest.mark.parametrize("method", ["generate", "stream", "encode_audio", "decode"])
def test_ray_session_has_the_protocols_signatures(method):
    import inspect

    def parameters(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()
                if p.name != "self"]

    assert parameters(getattr(RaySession, method)) == parameters(getattr(Session, method))


def _connect_here(address: str, tmp_path: Path, command: list[str], **env: str) -> subprocess.CompletedProcess:
    """A fresh process (Ray connects once per process) joining the module cluster with `env`'s token."""
    clean = {k: v for k, v in os.environ.items() if k not in AUTH and k != "RAY_ADDRESS"}
    clean.update(HOME=str(tmp_path), PYTHONPATH=os.pathsep.join(sys.path), **env)  # no ~/.ray/auth_token
    return subprocess.run([sys.executable, *command], env=clean, capture_output=True, text=True, timeout=120)


def test_the_token_comes_from_where_ray_looks_and_ray_stays_quiet(cluster, tiny_model, tmp_path):
    address = cluster.get_runtime_context().gcs_address
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    code = ("import json, sys; from higgs_cli.distributed.cluster import connect; "
            "ray, _ = connect(sys.argv[1]); print(json.dumps({'cpus': ray.cluster_resources()['CPU']}))")
    joined = _connect_here(address, tmp_path, ["-c", code, address], RAY_AUTH_TOKEN_PATH=str(token_file))
    assert joined.returncode == 0, joined.stderr
    assert json.loads(joined.stdout) == {"cpus": 2.0} and joined.stderr == ""  # no Ray line anywhere

    sheet = tmp_path / "lines.csv"
    sheet.write_text("id,text\nhello,Hello there.\n", encoding="utf-8")
    say = ["-m", "higgs_cli", "--json", "say", "--input-file", str(sheet), "--output-dir", str(tmp_path / "out"),
           "--model", str(tiny_model), "--ray", address]
    for env, words in [({"RAY_AUTH_TOKEN": "not-the-token"}, "refused the authentication token from $RAY_AUTH_TOKEN"),
                       ({}, "has none")]:
        refused = _connect_here(address, tmp_path, say, **env)
        assert refused.returncode == 2, refused.stderr
        said = refused.stdout + refused.stderr
        assert words in said and "ray get-auth-token" in said, said
        assert "InvalidAuthToken" not in said and "gcs_client" not in said and "Traceback" not in said
        assert json.loads(refused.stdout)  # --json output stays JSON
        assert not list(tmp_path.glob("out/*.wav"))


def test_a_token_where_ray_looks_switches_token_mode_on(tmp_path, monkeypatch):
    from higgs_cli.distributed import auth

    for name in AUTH:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(auth, "refresh_ray_config", lambda: None)  # this process's Ray keeps its cluster's mode
    assert auth.token_source() is None and auth.use_token("head:6379") is None
    assert "RAY_AUTH_MODE" not in os.environ
    assert auth.use_token("local") == "a token made for this run"  # not a new ~/.ray/auth_token
    assert len(os.environ["RAY_AUTH_TOKEN"]) == 64 and os.environ["RAY_AUTH_MODE"] == "token"
    assert not (tmp_path / ".ray").exists()
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_MODE")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("abc\n", encoding="utf-8")
    assert auth.use_token("head:6379") == str(tmp_path / ".ray" / "auth_token")
    assert os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's choice stands
    assert auth.use_token("head:6379") is None and os.environ["RAY_AUTH_MODE"] == "disabled"
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="RAY_AUTH_TOKEN_PATH names .*missing, which cannot be read"):
        auth.use_token("head:6379")
