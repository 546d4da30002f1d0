"""Object storage against moto's threaded S3 server (real HTTP, the real S3 protocol, on loopback):
URLs, reading a project and voices from a bucket, publishing outputs, a render cache shared by
two renders, and bad credentials or a missing bucket (a clear error, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeSession, write_voice

pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

from higgs_cli.engine.request import GenerationResult  # noqa: E402
from higgs_cli.errors import HiggsError, UsageError  # noqa: E402
from higgs_cli.project.folder.cache import RemoteStore, codes_key, open_store  # noqa: E402
from higgs_cli.project.folder.store import Store  # noqa: E402
from higgs_cli.sessions.identity import ModelIdentity  # noqa: E402
from higgs_cli.storage.files import local_copy, read_text  # noqa: E402
from higgs_cli.storage.objects import Prefix  # noqa: E402
from higgs_cli.storage.remote import scrub  # noqa: E402
from higgs_cli.storage.urls import looks_like_url, parse_url  # noqa: E402

PROJECT = """\
version: 1
title: Bucket Show
{cache}speakers:
  alice:
    audio: voices/alice.wav
    transcript: Hello, I am Alice.
  bob:
    description: deep male voice, slow
script:
  - id: talk
    task: dialogue
    lines:
      - alice: Welcome to the show.
      - bob: Thanks for having me.
      - alice: Let us begin.
"""


def _keys(client, bucket, prefix=""):
    found = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in found)


def _upload_project(client, bucket, prefix, tmp_path, cache=""):
    voice = write_voice(tmp_path / "upload" / "alice.wav")
    client.put_object(Bucket=bucket, Key=f"{prefix}/project.yaml", Body=PROJECT.format(cache=cache).encode())
    client.put_object(Bucket=bucket, Key=f"{prefix}/voices/alice.wav", Body=voice.read_bytes())


# -- URLs -------------------------------------------------------------------------------------------


def test_urls_are_urls_never_local_folders(cli, tmp_path, monkeypatch):
    assert looks_like_url("s3://bucket/show") and looks_like_url(Path("s3://bucket/show"))  # Path folds //
    assert not looks_like_url("shows/s3/x") and not looks_like_url("C:/shows")
    assert str(parse_url(Path("s3://bucket/a/b/"))) == "s3://bucket/a/b"
    with pytest.raises(UsageError, match="does not support"):
        parse_url("gs://bucket/show")
    with pytest.raises(UsageError, match="credentials"):
        parse_url("s3://AKIAIOSFODNN7EXAMPLE:secret@bucket/show")
    monkeypatch.chdir(tmp_path)
    for args in (["gs://bucket/show"], ["s3://bucket/../x"], [".", "-o", "gs://bucket/out"]):
        result = cli("project", "render", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert list(tmp_path.iterdir()) == []  # no folder named gs: or s3:


def test_a_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if not installed
    with pytest.raises(UsageError) as error:
        parse_url("s3://bucket/show")
    assert "higgs-cli[s3]" in str(error.value)


def test_credentials_are_scrubbed_from_messages(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-42")
    text = scrub("denied for AKIAIOSFODNN7EXAMPLE with s3cr3t-value-42, X-Amz-Signature=abc123&x=1")
    assert "AKIA" not in text and "s3cr3t" not in text and "abc123" not in text


# -- projects, voices, outputs ----------------------------------------------------------------------


def test_a_project_in_a_bucket_renders_to_its_build_prefix(cli, s3, loads, tmp_path):
    client, bucket = s3
    _upload_project(client, bucket, "shows/one", tmp_path)
    result = cli("--json", "project", "render", f"s3://{bucket}/shows/one")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["generated"] == 3 and summary["published"]["url"] == f"s3://{bucket}/shows/one/build"
    assert summary["published"]["objects"][-1] == "manifest.json"  # the manifest last
    keys = _keys(client, bucket, "shows/one/build/")
    manifest = json.loads(client.get_object(Bucket=bucket, Key="shows/one/build/manifest.json")["Body"].read())
    listed = {manifest["outputs"]["master"], *manifest["outputs"]["stems"]}
    assert {f"shows/one/build/{name}" for name in listed} <= set(keys)
    master = client.get_object(Bucket=bucket, Key=f"shows/one/build/{manifest['outputs']['master']}")["Body"].read()
    (tmp_path / "master.wav").write_bytes(master)
    assert sf.info(tmp_path / "master.wav").samplerate == 24000
    assert loads[0].encode_calls == 1  # alice's recording came from the bucket and was encoded
    text = json.dumps(manifest) + result.output
    assert "AKIA" not in text and "wJalr" not in text  # no credential in the manifest or the output

    # the second render reads the same mirror: nothing is generated again
    again = cli("--json", "project", "render", f"s3://{bucket}/shows/one")
    assert again.exit_code == 0 and json.loads(again.stdout)["generated"] == 0


def test_a_local_project_publishes_to_an_output_url(cli, s3, loads, tmp_path):
    client, bucket = s3
    show = tmp_path / "show"
    assert cli("project", "new", show, "--title", "Local Show").exit_code == 0
    result = cli("--json", "project", "render", show, "-o", f"s3://{bucket}/out")
    assert result.exit_code == 0, result.output
    keys = _keys(client, bucket, "out/")
    assert "out/manifest.json" in keys and "out/local-show.wav" in keys
    assert not (show / "build").exists()  # outputs went to the bucket (staged in the higgs cache folder)


def test_voices_and_transcripts_from_urls(s3, tmp_path):
    from higgs_cli.voices.library import VoiceLibrary

    client, bucket = s3
    voice = write_voice(tmp_path / "v.wav", seconds=1.5)
    client.put_object(Bucket=bucket, Key="voices/belinda.wav", Body=voice.read_bytes())
    client.put_object(Bucket=bucket, Key="voices/belinda.txt", Body=b"It was the night before my birthday.")
    library = VoiceLibrary(tmp_path / "library")
    with local_copy(f"s3://{bucket}/voices/belinda.wav", what="voice audio") as path:
        assert path.suffix == ".wav" and path.is_file()
        library.add("belinda", path, read_text(f"s3://{bucket}/voices/belinda.txt"))
        kept = path
    assert not kept.exists()  # the download is gone afterwards
    assert library.get("belinda").transcript == "It was the night before my birthday."
    with pytest.raises(UsageError, match="does not exist"):
        with local_copy(f"s3://{bucket}/voices/nobody.wav"):
            pass


def test_voice_add_takes_urls_through_the_cli(s3, cli, tmp_path):
    client, bucket = s3
    client.put_object(Bucket=bucket, Key="v/nora.wav", Body=write_voice(tmp_path / "n.wav", seconds=1.5).read_bytes())
    client.put_object(Bucket=bucket, Key="v/nora.txt", Body=b"Good evening, everyone.")
    result = cli("--json", "voice", "add", "nora", f"s3://{bucket}/v/nora.wav",
                 "--transcript-file", f"s3://{bucket}/v/nora.txt")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["transcript"] == "Good evening, everyone."
    missing = cli("voice", "add", "ghost", f"s3://{bucket}/v/ghost.wav", "--transcript", "Hi.")
    assert missing.exit_code == 2 and "does not exist" in missing.output and "Traceback" not in missing.output
    assert "ghost" not in cli("--json", "voice", "list").stdout


# -- the shared render cache ------------------------------------------------------------------------


def _result(seed: int) -> GenerationResult:
    codes = np.random.default_rng(seed).integers(0, 1024, (8, 12))
    return GenerationResult(codes=codes, audio=np.zeros(12 * 960, dtype=np.float32), finished=True)


def test_remote_store_reads_and_writes_through(s3, tmp_path):
    client, bucket = s3
    url = f"s3://{bucket}/cache"
    first, second = RemoteStore(Store(tmp_path / "a"), url), RemoteStore(Store(tmp_path / "b"), url)
    first.put("k1", _result(1), meta={"tries": 1})
    assert _keys(client, bucket, "cache/") == ["cache/k1.npz"]
    assert second.has("k1") and not second.local.has("k1")
    assert second.meta("k1")["tries"] == 1 and second.local.has("k1")  # meta reads through too
    second.local.path("k1").unlink()
    entry = second.get("k1")
    assert entry is not None and np.array_equal(entry.codes, _result(1).codes) and second.local.has("k1")
    assert second.meta("k1")["tries"] == 1
    second.put("k1", _result(1))  # the same line written again by another machine: harmless
    assert first.get("k1") is not None and _keys(client, bucket, "cache/") == ["cache/k1.npz"]

    client.put_object(Bucket=bucket, Key="cache/bad.npz", Body=b"not a zip file")  # damaged: a miss
    assert second.get("bad") is None and not second.local.path("bad").exists()
    assert second.clear() and _keys(client, bucket, "cache/")  # clearing the local cache leaves the shared one


def test_two_renders_share_a_cache_url(cli, s3, loads, tmp_path, monkeypatch):
    client, bucket = s3
    _shared_cache_in_render(monkeypatch)
    for name in ("one", "two"):
        folder = tmp_path / name
        (folder / "voices").mkdir(parents=True)
        write_voice(folder / "voices" / "alice.wav")
        (folder / "project.yaml").write_text(PROJECT.format(cache=f"cache: s3://{bucket}/shared\n"), encoding="utf-8")
    first = cli("--json", "project", "render", tmp_path / "one")
    assert first.exit_code == 0, first.output
    shared = _keys(client, bucket, "shared/")
    assert json.loads(first.stdout)["generated"] == 3 and len(shared) == 4  # 3 lines, alice's codes
    assert sum(key.startswith("shared/codes/") for key in shared) == 1
    second = cli("--json", "project", "render", tmp_path / "two")  # another folder (another machine)
    assert second.exit_code == 0, second.output
    # every line from the bucket, alice's codes too (this identity is unknown until a model loads:
    # the one loaded here only names its codec, see the test below for a render that loads none)
    assert json.loads(second.stdout)["generated"] == 0
    assert all(s.generate_calls == 0 and s.encode_calls == 0 for s in loads[1:])


SHARED_VOICES = PROJECT.replace("""  bob:
    description: deep male voice, slow
""", """  bob:
    voice: bobby
""")


def _machine(root: Path, home: Path, bucket: str, monkeypatch) -> Path:
    """A machine's own HIGGS_HOME (its library has `bobby`, added there) and its own copy of the project."""
    from higgs_cli.voices.library import VoiceLibrary

    monkeypatch.setenv("HIGGS_HOME", str(home))
    (root / "voices").mkdir(parents=True)
    write_voice(root / "voices" / "alice.wav")
    write_voice(root / "bobby.wav", freq=110.0)
    VoiceLibrary().add("bobby", root / "bobby.wav", "I am Bob, and this is my voice.")
    (root / "project.yaml").write_text(SHARED_VOICES.format(cache=f"cache: s3://{bucket}/shared\n"),
                                       encoding="utf-8")
    return root


def test_a_shared_cache_is_enough_no_model_loads_on_a_second_machine(cli, s3, fake_sessions, tmp_path,
                                                                        monkeypatch):
    """Machine B (a fresh HIGGS_HOME and project copy, the same cache URL) loads no model: the voices'
    codes come from the bucket with the lines, and its outputs are machine A's byte for byte."""
    client, bucket = s3
    made = fake_sessions.known(ModelIdentity("fake/model", FakeSession.model_id, FakeSession.codec_id)).made
    a = _machine(tmp_path / "a", tmp_path / "home-a", bucket, monkeypatch)
    first = cli("--json", "project", "render", a)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["generated"] == 3 and made[0].encode_calls == 2  # alice and bobby
    assert sum(key.startswith("shared/codes/") for key in _keys(client, bucket, "shared/")) == 2

    b = _machine(tmp_path / "b", tmp_path / "home-b", bucket, monkeypatch)
    second = cli("--json", "project", "render", b)
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert summary["generated"] == 0 and summary["model_loaded"] is False and len(made) == 1
    # the audio and subtitles (review.html and the manifest carry the render's date)
    built = [path for path in sorted((a / "build").rglob("*")) if path.suffix in (".wav", ".srt", ".vtt")]
    assert any(path.suffix == ".wav" for path in built)
    for path in built:
        assert path.read_bytes() == (b / "build" / path.relative_to(a / "build")).read_bytes(), path
    assert len(_keys(client, bucket, "shared/")) == 5  # nothing new: 3 lines, 2 voices


def test_damaged_shared_codes_are_encoded_again(s3, tmp_path):
    client, bucket = s3
    store = RemoteStore(Store(tmp_path / "show"), f"s3://{bucket}/shared")
    session = FakeSession()
    audio = np.linspace(-0.5, 0.5, 24000, dtype=np.float32)
    client.put_object(Bucket=bucket, Key=f"shared/codes/{codes_key(audio, 'c1')}.npy", Body=b"not numpy")
    codes = store.encoder(session.encode_audio, "c1")(audio)
    assert session.encode_calls == 1 and store.codes_fetched == 0
    again = store.encoder(session.encode_audio, "c1")(audio)  # replaced: read back, not encoded
    assert session.encode_calls == 1 and store.codes_fetched == 1 and np.array_equal(codes, again)
    store.encoder(session.encode_audio, "c2")(audio)  # another codec is another key
    assert session.encode_calls == 2


def _shared_cache_in_render(monkeypatch):
    """render.py makes its store with open_store(project) once integrated; until then, route it there."""
    import higgs_cli.project.building.render as render

    if "open_store" in vars(render):
        return
    current = {}
    original = render.plan_project

    def plan(project, *args, **kwargs):
        current["project"] = project
        return original(project, *args, **kwargs)

    monkeypatch.setattr(render, "plan_project", plan)
    monkeypatch.setattr(render, "Store", lambda root: open_store(current["project"]))


# -- bad buckets and credentials ----------------------------------------------------------------------


def test_a_missing_bucket_is_a_clear_error_and_nothing_is_written(cli, s3, loads, tmp_path):
    show = tmp_path / "show"
    assert cli("project", "new", show).exit_code == 0
    result = cli("project", "render", show, "-o", "s3://no-such-bucket-here/out")
    assert result.exit_code == 2 and "no-such-bucket-here does not exist" in result.output
    assert "Traceback" not in result.output and not loads  # refused before the model loads
    assert not (show / ".higgs" / "cache").exists()
    result = cli("project", "render", "s3://no-such-bucket-here/show")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_bad_credentials_are_a_clear_error_without_the_secret(cli, s3, loads, tmp_path, monkeypatch):
    from moto.core.authorization import enable_iam_authentication

    client, bucket = s3
    show = tmp_path / "show"
    assert cli("project", "new", show).exit_code == 0
    cache = Store(show)
    cache.put("kept", _result(3))
    before = sorted(p.name for p in cache.dir.iterdir())
    yaml = show / "project.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8").replace("title:", f"cache: s3://{bucket}/shared\ntitle:", 1),
                    encoding="utf-8")
    _shared_cache_in_render(monkeypatch)
    with enable_iam_authentication():  # moto now checks keys: ours belong to no IAM user
        for args in ([show, "-o", f"s3://{bucket}/out"], [show]):
            result = cli("project", "render", *args)
            assert result.exit_code != 0 and "access denied" in result.output, result.output
            assert "wJalr" not in result.output and "AKIAIOSFODNN7EXAMPLE" not in result.output
            assert "Traceback" not in result.output
    assert _keys(client, bucket) == []  # nothing written
    assert sorted(p.name for p in cache.dir.iterdir()) == before  # the local cache untouched
    assert not (show / "build").exists()


def test_publish_removes_the_old_manifest_first_and_stale_outputs_after(s3, tmp_path):
    from higgs_cli.project.folder.publish import publish_build

    client, bucket = s3
    build = tmp_path / "build"
    (build / "stems").mkdir(parents=True)
    for name in ("a.wav", "stems/1.wav", "stems/2.wav"):
        (build / name).write_bytes(b"x")
    (build / "manifest.json").write_text(json.dumps({"outputs": {"master": "a.wav",
                                                                 "stems": ["stems/1.wav", "stems/2.wav"]}}))
    client.put_object(Bucket=bucket, Key="out/notes.txt", Body=b"someone else's")
    publish_build(build, f"s3://{bucket}/out")
    (build / "stems" / "2.wav").unlink()
    (build / "manifest.json").write_text(json.dumps({"outputs": {"master": "a.wav", "stems": ["stems/1.wav"]}}))
    report = publish_build(build, f"s3://{bucket}/out")
    assert report.removed == ["stems/2.wav"]
    assert _keys(client, bucket, "out/") == ["out/a.wav", "out/manifest.json", "out/notes.txt", "out/stems/1.wav"]
    with pytest.raises(HiggsError, match="not a finished build"):
        publish_build(tmp_path / "empty", f"s3://{bucket}/out2")
    assert Prefix(f"s3://{bucket}/out2").keys() == {}


def test_an_unsupported_scheme_is_named_as_written():
    """A path-typed option folds `gs://b/x` to `gs:/b/x`; the error shows what the user typed."""
    from pathlib import Path

    from higgs_cli.errors import UsageError
    from higgs_cli.storage.urls import parse_url, unfolded

    assert unfolded(Path("gs://b/x.wav")) == "gs://b/x.wav" and unfolded("plain/x.wav") == "plain/x.wav"
    with pytest.raises(UsageError, match=r"gs://b/x\.wav uses the scheme gs://"):
        parse_url(Path("gs://b/x.wav"), what="voice audio")
