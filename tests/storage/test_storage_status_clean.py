"""`project status` and `project clean` on the s3 locations `project render` takes (a project URL,
an --output-dir URL, a shared `cache:`), against moto's threaded S3 server (conftest.py):
the same mirror and staging folder as render, one listing of a shared cache instead of a request a
line, and clean removing in the bucket only what it removes locally."""

from __future__ import annotations

import json

from fakes import write_voice
from test_storage import PROJECT, _keys, _result, _upload_project

from higgs_cli.project.folder.cache import RemoteStore
from higgs_cli.project.folder.store import Store
from higgs_cli.storage.objects import Prefix


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _counting(monkeypatch, key: str) -> list[tuple[str, str]]:
    """Every per-object request and listing made through a Prefix whose key is `key`."""
    calls: list[tuple[str, str]] = []
    for name in ("info", "exists", "read", "listing"):
        original = getattr(Prefix, name)

        def wrapped(self, *args, _original=original, _name=name, **kwargs):
            if self.url.key == key:
                calls.append((_name, args[0] if args else ""))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Prefix, name, wrapped)
    return calls


def _local_show(tmp_path, name, cache=""):
    folder = tmp_path / name
    (folder / "voices").mkdir(parents=True)
    write_voice(folder / "voices" / "alice.wav")
    (folder / "project.yaml").write_text(PROJECT.format(cache=cache), encoding="utf-8")
    return folder


# -- a project in a bucket --------------------------------------------------------------------------


def test_status_of_a_project_url_reads_the_mirror_render_made(cli, s3, loads, tmp_path):
    client, bucket = s3
    _upload_project(client, bucket, "shows/one", tmp_path)
    url = f"s3://{bucket}/shows/one"
    before = _json(cli("--json", "project", "status", url))  # never rendered: mirrored, every line missing
    assert before["counts"]["missing"] == 3 and not before["outputs_current"]
    assert before["build_url"] == f"{url}/build"  # where a render of it publishes
    assert _json(cli("--json", "project", "render", url))["generated"] == 3
    after = _json(cli("--json", "project", "status", url))
    assert after["counts"] == {"rendered": 3, "stale": 0, "missing": 0} and after["outputs_current"]
    assert after["build_url"] == f"{url}/build"
    human = cli("project", "status", url)
    assert human.exit_code == 0 and f"the outputs in {url}/build are up to date" in human.output
    assert not loads[1:]  # status loads no model


def test_clean_of_a_project_url_removes_its_build_and_nothing_else(cli, s3, loads, tmp_path):
    client, bucket = s3
    _upload_project(client, bucket, "shows/one", tmp_path)
    url = f"s3://{bucket}/shows/one"
    assert _json(cli("--json", "project", "render", url))["generated"] == 3
    published = _keys(client, bucket, "shows/one/build/")
    manifest = json.loads(client.get_object(Bucket=bucket, Key="shows/one/build/manifest.json")["Body"].read())
    client.put_object(Bucket=bucket, Key="shows/one/build/notes.txt", Body=b"someone else's")
    client.put_object(Bucket=bucket, Key="shows/other/build/manifest.json", Body=json.dumps(manifest).encode())
    inputs = _keys(client, bucket, "shows/one/voices/") + ["shows/one/project.yaml"]

    removed = _json(cli("--json", "project", "clean", url))["removed"]
    assert f"{url}/build/manifest.json" in removed
    assert {f"s3://{bucket}/{key}" for key in published} <= set(removed)
    assert _keys(client, bucket, "shows/one/build/") == ["shows/one/build/notes.txt"]  # not a render's
    assert _keys(client, bucket, "shows/other/") == ["shows/other/build/manifest.json"]  # another project's
    assert set(inputs) <= set(_keys(client, bucket, "shows/one/"))  # the project itself stays
    status = _json(cli("--json", "project", "status", url))
    assert status["counts"]["missing"] == 3  # the mirror's cache went too
    assert status["build_url"] == f"{url}/build" and not status["outputs_current"]
    again = _json(cli("--json", "project", "clean", url))
    assert again["removed"] == []


def test_clean_of_a_project_url_from_another_machine(cli, s3, loads, tmp_path, monkeypatch):
    """No mirror, no state here: the project's own build/ prefix is still its build, as build/ is locally."""
    client, bucket = s3
    _upload_project(client, bucket, "shows/one", tmp_path)
    url = f"s3://{bucket}/shows/one"
    assert cli("project", "render", url).exit_code == 0
    monkeypatch.setenv("HIGGS_HOME", str(tmp_path / "elsewhere"))
    kept = _json(cli("--json", "project", "clean", url, "--no-build"))
    assert not any(path.startswith("s3://") for path in kept["removed"])  # --no-build: the bucket untouched
    assert "shows/one/build/manifest.json" in _keys(client, bucket, "shows/one/build/")
    removed = _json(cli("--json", "project", "clean", url))["removed"]
    assert f"{url}/build/manifest.json" in removed and _keys(client, bucket, "shows/one/build/") == []


def test_snapshots_of_a_project_url_go_only_with_the_flag(cli, s3, loads, tmp_path):
    from higgs_cli.project.folder.mirror import mirror_dir
    from higgs_cli.storage.urls import parse_url

    client, bucket = s3
    _upload_project(client, bucket, "shows/one", tmp_path)
    url = f"s3://{bucket}/shows/one"
    assert cli("project", "render", url).exit_code == 0
    snapshots = mirror_dir(parse_url(url)) / ".higgs" / "snapshots"
    assert snapshots.is_dir()
    assert cli("project", "clean", url).exit_code == 0 and snapshots.is_dir()
    assert cli("project", "clean", url, "--snapshots").exit_code == 0 and not snapshots.exists()


def test_a_missing_project_url_is_a_clear_error(cli, s3, tmp_path):
    client, bucket = s3
    for command in ("status", "clean"):
        for url in (f"s3://{bucket}/no/show", "s3://no-such-bucket-here/show", "gs://bucket/show"):
            result = cli("project", command, url)
            assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert _keys(client, bucket) == []


# -- a local project published to a bucket --------------------------------------------------------


def test_status_and_clean_follow_an_output_url(cli, s3, loads, tmp_path):
    client, bucket = s3
    show = tmp_path / "show"
    assert cli("project", "new", show, "--title", "Local Show").exit_code == 0
    assert cli("project", "render", show, "-o", f"s3://{bucket}/out").exit_code == 0
    status = _json(cli("--json", "project", "status", show))
    assert status["outputs_current"] and status["build_url"] == f"s3://{bucket}/out"
    client.put_object(Bucket=bucket, Key="out/readme.txt", Body=b"mine")
    client.put_object(Bucket=bucket, Key="elsewhere/x.wav", Body=b"mine")
    removed = _json(cli("--json", "project", "clean", show))["removed"]
    assert f"s3://{bucket}/out/local-show.wav" in removed and f"s3://{bucket}/out/manifest.json" in removed
    assert _keys(client, bucket) == ["elsewhere/x.wav", "out/readme.txt"]
    assert not (show / ".higgs" / "cache").exists()


def test_clean_fails_on_the_bucket_before_removing_anything_local(cli, s3, loads, tmp_path):
    from moto.core.authorization import enable_iam_authentication

    client, bucket = s3
    show = tmp_path / "show"
    assert cli("project", "new", show).exit_code == 0
    assert cli("project", "render", show, "-o", f"s3://{bucket}/out").exit_code == 0
    cached = sorted(p.name for p in (show / ".higgs" / "cache").iterdir())
    published = _keys(client, bucket, "out/")
    with enable_iam_authentication():
        result = cli("project", "clean", show)
    assert result.exit_code != 0 and "access denied" in result.output and "Traceback" not in result.output
    assert "wJalr" not in result.output
    assert sorted(p.name for p in (show / ".higgs" / "cache").iterdir()) == cached
    assert _keys(client, bucket, "out/") == published
    assert _json(cli("--json", "project", "status", show))["outputs_current"]  # the state is kept too


def test_unpublish_leaves_a_prefix_whose_manifest_is_not_a_render(s3):
    from higgs_cli.project.folder.publish import unpublish

    client, bucket = s3
    client.put_object(Bucket=bucket, Key="out/manifest.json", Body=b'{"outputs": {"master": "data.csv"}}')
    client.put_object(Bucket=bucket, Key="out/data.csv", Body=b"1,2")
    assert unpublish(f"s3://{bucket}/out") == []
    assert _keys(client, bucket) == ["out/data.csv", "out/manifest.json"]


# -- a shared render cache ----------------------------------------------------------------------------


def test_status_lists_a_shared_cache_once_instead_of_asking_per_line(cli, s3, loads, tmp_path, monkeypatch):
    client, bucket = s3
    cache = f"cache: s3://{bucket}/shared\n"
    one, two = _local_show(tmp_path, "one", cache), _local_show(tmp_path, "two", cache)
    client.put_object(Bucket=bucket, Key="shared/someone-elses.npz", Body=b"x")
    assert cli("project", "render", one).exit_code == 0
    lines = {key for key in _keys(client, bucket, "shared/") if "someone" not in key and "/codes/" not in key}
    assert len(lines) == 3
    assert cli("project", "render", two).exit_code == 0  # the same lines, from the bucket
    for path in (two / ".higgs" / "cache").glob("*.npz"):
        path.unlink()  # this machine's copies gone: only the bucket has them
    calls = _counting(monkeypatch, "shared")
    status = _json(cli("--json", "project", "status", two))
    assert status["counts"]["missing"] == 0 and status["counts"]["rendered"] == 3  # from the listing's times
    assert [c for c in calls if c[0] == "listing"] == [("listing", "")]
    assert not [c for c in calls if c[0] in ("info", "exists")]  # no request per line to learn it is there
    assert sorted(key for name, key in calls if name == "read") == sorted(k[len("shared/"):] for k in lines)

    yaml = two / "project.yaml"  # now lines the bucket lacks: known absent from the listing, nothing asked
    yaml.write_text(yaml.read_text(encoding="utf-8").replace("Let us begin.", "Let us end.")
                    .replace("Welcome to", "Goodbye from"), encoding="utf-8")
    calls.clear()
    status = _json(cli("--json", "project", "status", two))
    assert status["counts"]["missing"] == 2
    assert calls == [("listing", "")] and _keys(client, bucket, "shared/someone-elses.npz")
    assert _json(cli("--json", "project", "clean", two))["removed"]
    assert len(_keys(client, bucket, "shared/")) == 5  # clean leaves a shared cache alone (3 lines, 1 voice's codes)


def test_a_capped_listing_falls_back_to_asking_for_what_it_did_not_reach(s3, tmp_path, monkeypatch):
    client, bucket = s3
    url = f"s3://{bucket}/cache"
    writer = RemoteStore(Store(tmp_path / "a"), url)
    for i, key in enumerate(["k1", "k2", "k3", "k4", "k5"]):
        writer.put(key, _result(i))
    listed, complete = Prefix(url).listing(max_pages=2, page_size=2)
    assert len(listed) == 4 and not complete
    assert Prefix(url).listing(max_pages=3, page_size=2) == (Prefix(url).listing(max_pages=1)[0], True)

    reader = RemoteStore(Store(tmp_path / "b"), url)
    reader.prefetch(["k5", "nope"], page_size=2)  # two keys: at most two pages, four of five objects
    calls = _counting(monkeypatch, "cache")
    assert reader.has("k1") and reader.mtime("k5") is not None and reader.meta("k5") is not None
    assert not reader.has("nope") and reader.mtime("nope") is None
    asked = {key for name, key in calls if name in ("info", "exists")}
    assert "k1.npz" not in asked and "nope.npz" in asked  # only what the listing did not settle


def test_a_line_written_after_the_listing_is_seen(s3, tmp_path):
    client, bucket = s3
    store = RemoteStore(Store(tmp_path / "a"), f"s3://{bucket}/cache")
    store.prefetch(["k1"])  # an empty cache, listed whole: k1 is known absent
    assert not store.has("k1")
    store.put("k1", _result(1))
    store.local.path("k1").unlink()
    assert store.has("k1") and store.mtime("k1") is not None and store.get("k1") is not None
