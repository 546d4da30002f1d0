"""Killing a render: SIGINT and SIGKILL at several points leave no partial output and no partial
cache entry, Ctrl-C exits 130 with one clean message, and the next render generates only
the lines that were not finished.

Most cases run `higgs` with a FakeSession (tests/fake_cli.py), which can stop at an exact
point: between generate() calls, inside a cache write, inside an output write. One case
kills `python -m higgs_cli project render` on a real tiny random checkpoint.
"""

from __future__ import annotations

import json
import shutil
import signal

import numpy as np
import pytest
from procs import paused, run, snapshot, start, stop, wait_until

LINES = 12  # with --batch-size 1 a render makes three generate() calls of four lines


def _project(root, lines=LINES, *, word="line"):
    root.mkdir(parents=True, exist_ok=True)
    script = "\n".join(f"      - Spoken {word} number {i}." for i in range(lines))
    (root / "project.yaml").write_text(f"""\
title: Show
defaults: {{max_seconds: 2}}
speakers:
  host: {{description: calm voice}}
script:
  - id: talk
    task: dialogue
    speaker: host
    lines:
{script}
""")
    return root


def _entries(root):
    cache = root / ".higgs" / "cache"
    return sorted(p for p in cache.glob("*.npz") if not p.name.startswith(".")) if cache.is_dir() else []


def _temporaries(root):
    return [p for p in root.rglob("*") if ".higgs-tmp" in p.name or ".higgs-old" in p.name]


def _review_rows(page: bytes) -> list[bytes]:
    """The review page's line rows, cache state aside (the second render found every line cached)."""
    return [row.replace(b"cached", b"generated") for row in page.splitlines() if row.startswith(b'<tr class="line')]


def _assert_entries_whole(root):
    for entry in _entries(root):
        with np.load(entry, allow_pickle=False) as data:  # a partial file would not open
            assert data["codes"].shape[0] == 8 and data["audio"].ndim == 1


def _render(root, *args, **env):
    result = run(["--json", "project", "render", root, "--batch-size", "1", *args], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _clean_exit(code, stdout, stderr, *, json_mode):
    assert code == 130, (stdout, stderr)
    assert "Traceback" not in stderr
    if json_mode:
        error = json.loads(stdout)
        assert error["exit_code"] == 130 and error["error"].startswith("interrupted")
    else:
        assert "interrupted; nothing half-written was kept" in stderr


@pytest.mark.slow
@pytest.mark.parametrize("json_mode", [True, False])
def test_ctrl_c_between_batches_keeps_what_was_generated(tmp_path, json_mode):
    root = _project(tmp_path / "show")
    flags = ["--json"] if json_mode else []
    proc = paused(tmp_path / "paused", [*flags, "project", "render", root, "-b", "1"], "generate:2")
    _clean_exit(*stop(proc, signal.SIGINT), json_mode=json_mode)
    assert len(_entries(root)) == 4  # the first call's lines were cached as soon as it returned
    _assert_entries_whole(root)
    assert not (root / "build").exists() and _temporaries(root) == []

    summary = _render(root)
    assert (summary["generated"], summary["cached"]) == (LINES - 4, 4)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL, signal.SIGTERM])
def test_a_kill_inside_a_cache_write_leaves_no_entry(tmp_path, sig):
    root = _project(tmp_path / "show")
    proc = paused(tmp_path / "paused", ["project", "render", root, "-b", "1"], "write:*.npz")
    code, _, stderr = stop(proc, sig)
    assert code == {signal.SIGINT: 130, signal.SIGKILL: -9, signal.SIGTERM: 143}[sig], stderr
    assert "Traceback" not in stderr
    assert _entries(root) == []  # the entry being written never appears under its name
    if sig == signal.SIGKILL:
        assert len(_temporaries(root)) == 1  # nothing ran to remove it ...
    else:
        assert _temporaries(root) == []  # ... a signal Python sees unwinds and removes it

    summary = _render(root)
    assert (summary["generated"], summary["cached"]) == (LINES, 0)
    assert _temporaries(root) == []  # swept by the next render, under the project lock


WRITING = ["write:*_001_host.wav", "write:.show.wav*"]  # a stem, the encoded master: before any rename
RENAMING = ["write:show.srt", "write:manifest.json"]  # while the finished files are renamed into place


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """A project rendered once, to copy."""
    root = _project(tmp_path_factory.mktemp("rendered") / "show")
    _render(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize(("point", "sig"), [
    ("write:*_001_host.wav", signal.SIGINT), ("write:*_001_host.wav", signal.SIGKILL),
    ("write:.show.wav*", signal.SIGKILL), ("write:show.srt", signal.SIGINT), ("write:manifest.json", signal.SIGKILL),
])
def test_a_kill_while_writing_outputs_leaves_each_file_whole(rendered, tmp_path, point, sig):
    """Outputs are written beside their names, then renamed into place one after another (the
    manifest last): a kill leaves the old build as it was, or, during the renames, each file
    the old build's or the new one's, whole."""
    root = tmp_path / "show"
    shutil.copytree(rendered, root)
    old = snapshot(root / "build")
    _project(root, word="sentence")  # every line changes
    proc = paused(tmp_path / "paused", ["project", "render", root, "-b", "1"], point)
    code, _, stderr = stop(proc, sig)
    assert code in (130, -9) and "Traceback" not in stderr
    killed = {path: data for path, data in snapshot(root / "build").items()
              if ".higgs-tmp" not in path}  # temporaries a SIGKILL leaves: swept by the next render
    _assert_entries_whole(root)

    summary = _render(root)
    assert (summary["generated"], summary["cached"]) == (0, LINES)  # every line had been cached
    new = snapshot(root / "build")
    for path, data in killed.items():
        if path.endswith("manifest.json"):
            assert json.loads(data)["lines"] in (json.loads(old[path])["lines"], json.loads(new[path])["lines"])
        elif path.endswith("review.html"):  # a per-render report, like the manifest: its lines must match
            assert data.endswith(b"</html>\n") and _review_rows(data) in (_review_rows(old[path]),
                                                                          _review_rows(new[path])), path
        else:
            assert data in (old.get(path), new.get(path)), path
    if point in WRITING:
        assert killed == old
    assert _temporaries(root) == []


def test_a_real_render_killed_twice_resumes_with_only_the_missing_lines(tiny_model, tmp_path):
    """`python -m higgs_cli project render` on a tiny random checkpoint: Ctrl-C, then SIGKILL, then resume."""
    root = _project(tmp_path / "show")
    args = ["--json", "project", "render", root, "--model", tiny_model, "--batch-size", "1", "--device", "cpu"]

    proc = start(args, fake=False)
    wait_until(lambda: len(_entries(root)) >= 1, timeout=120, proc=proc)
    _clean_exit(*stop(proc, signal.SIGINT), json_mode=True)
    first = len(_entries(root))
    _assert_entries_whole(root)
    assert 1 <= first < LINES and _temporaries(root) == [] and not (root / "build").exists()

    proc = start(args, fake=False)
    wait_until(lambda: len(_entries(root)) > first, timeout=120, proc=proc)
    code, _, _ = stop(proc, signal.SIGKILL)
    assert code == -9
    second = len(_entries(root))
    _assert_entries_whole(root)
    assert first < second

    result = run(args, fake=False, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["generated"], summary["cached"]) == (LINES - second, second)
    assert _temporaries(root) == [] and (root / "build" / "manifest.json").is_file()


def test_a_voice_library_change_killed_mid_swap_is_put_back(cli, tmp_path, _isolated_home):
    """`voice add --force` replaces a folder with two renames; a kill between them leaves the old
    voice moved aside, and the next library change puts it back before doing anything."""
    from fakes import write_voice

    from higgs_cli.fsutil import OLD_MARK, TMP_MARK

    assert cli("voice", "add", "ana", write_voice(tmp_path / "a.wav"), "--transcript", "Hi.").exit_code == 0
    root = _isolated_home / "voices"
    aside = root / f".ana{OLD_MARK}.x1y2"
    aside.mkdir()
    (root / "ana").rename(aside / "ana")  # the state after the first rename
    (root / f".bea{TMP_MARK}.z3").mkdir()  # a new folder that was being filled
    assert cli("voice", "list").stdout.count("ana") == 0
    result = cli("voice", "add", "bea", write_voice(tmp_path / "b.wav"), "--transcript", "Hello.")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in root.iterdir()) == [".lock", "ana", "bea"]
    assert cli("voice", "show", "ana").exit_code == 0


def test_an_error_raised_while_unwinding_an_interrupt_still_exits_130(monkeypatch, capsys, tmp_path):
    """Ctrl-C inside a cache write made numpy's zip writer fail on its way out (ValueError:
    'Can't close the ZIP file while there is an open writing handle'); it is still Ctrl-C."""
    import zipfile

    from higgs_cli.cli import app as cli_app

    left_open = []

    def interrupted_zip_write(**_):  # as numpy's savez, interrupted just after opening a member
        archive = zipfile.ZipFile(tmp_path / f"entry{len(left_open)}.npz", "w")
        try:
            left_open.append((archive, archive.open("codes.npy", "w")))
            raise KeyboardInterrupt
        finally:
            archive.close()

    with pytest.raises(ValueError, match="open writing handle") as raised:
        interrupted_zip_write()
    assert isinstance(raised.value.__context__, KeyboardInterrupt)

    cli_app._register_nouns()  # on the real app, before it is replaced
    monkeypatch.setattr(cli_app, "app", interrupted_zip_write)
    with pytest.raises(SystemExit) as exit_:
        cli_app._run(["project", "render", "show"], debug=False)
    assert exit_.value.code == 130
    assert "interrupted; nothing half-written was kept" in capsys.readouterr().err
    for archive, member in left_open:
        member.close()
        archive.close()
