"""`higgs say --input-file FILE --output-dir DIR` (and `say -`) through the real CLI: rows of .csv, .jsonl
and .txt, one file per row, the manifest, resuming, --force, and bad files reported with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeSession
from say_fixtures import feed_stdin

ROOT = Path(__file__).resolve().parents[2]


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_a_csv_on_the_tiny_model_one_file_per_id_then_a_rerun_skips_them(cli, tiny_model, tmp_path):
    sheet = tmp_path / "lines.csv"
    sheet.write_text('id,text,seed,format\nhello,Hello there.,3,\nbye,"Goodbye, friend.",4,flac\n', encoding="utf-8")
    out = tmp_path / "out"
    args = ("--json", "say", "--input-file", sheet, "--output-dir", out, "--model", tiny_model, "--max-seconds", "0.4")
    first = cli(*args)
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert (data["rows"], data["generated"], data["skipped"], data["random_weights"]) == (2, 2, 0, True)
    assert "noise" in data["warning"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["bye.flac", "hello.wav",
                                                                                    "manifest.json"]
    audio, rate = sf.read(out / "hello.wav")
    assert rate == 24000 and len(audio) == round(data["files"][0]["seconds"] * 24000)
    manifest = _manifest(out)
    assert [(r["id"], r["line"], r["seed"], r["status"]) for r in manifest["rows"]] == [
        ("hello", 2, 3, "generated"), ("bye", 3, 4, "generated")]
    assert len({r["key"] for r in manifest["rows"]}) == 2
    before = (out / "hello.wav").read_bytes()
    again = json.loads(cli(*args).stdout)
    assert (again["generated"], again["skipped"]) == (0, 2)
    assert (out / "hello.wav").read_bytes() == before


def test_jsonl_rows_with_their_own_voice_scene_and_seed(cli, session, tmp_path, _isolated_home):
    ref = tmp_path / "ref.wav"
    sf.write(ref, 0.3 * np.sin(np.linspace(0, 400, 24000)), 24000)
    assert cli("voice", "add", "tone", ref, "--transcript", "A reference tone.").exit_code == 0
    rows = [{"id": "a1", "text": "First line.", "voice": "tone", "direction": "whispering", "seed": 9},
            {"id": 7, "text": "Second line."}]
    sheet = tmp_path / "rows.jsonl"
    sheet.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    result = cli("--json", "say", "-i", sheet, "-d", tmp_path / "o", "--seed", "5", "--scene", "a studio")
    assert result.exit_code == 0, result.output
    first, second = session.requests
    assert (first.seed, first.scene, len(first.history)) == (9, "whispering", 1)
    assert (second.seed, second.scene, second.history) == (5, "a studio", ())
    assert (tmp_path / "o" / "a1.wav").is_file() and (tmp_path / "o" / "7.wav").is_file()
    assert session.generate_calls == 1  # one batch, one loaded session


@pytest.mark.parametrize("paragraphs, texts", [
    (False, ["One.", "Two,", "still two.", "Three."]),
    (True, ["One. Two, still two.", "Three."]),
])
def test_a_txt_by_line_or_by_paragraph_named_by_row_number(cli, session, tmp_path, paragraphs, texts):
    source = tmp_path / "book.txt"
    source.write_text("One.\nTwo,\nstill two.\n\n\nThree.\n", encoding="utf-8")
    args = ["say", "--input-file", source, "--output-dir", tmp_path / "o"] + (["--paragraphs"] if paragraphs else [])
    assert cli(*args).exit_code == 0
    assert [r.text.rstrip(".") for r in session.requests] == [t.rstrip(".") for t in texts]
    names = sorted(p.name for p in (tmp_path / "o").glob("*.wav"))
    assert names == [f"{n:04d}.wav" for n in range(1, len(texts) + 1)]
    assert [r["line"] for r in _manifest(tmp_path / "o")["rows"]][-1] == 6


def test_rows_from_stdin_and_say_dash(cli, session, tmp_path, monkeypatch):
    feed_stdin(monkeypatch, b"From a pipe.\nAnd another.\n")
    assert cli("say", "--input-file", "-", "--output-dir", tmp_path / "o").exit_code == 0
    assert [r["file"] for r in _manifest(tmp_path / "o")["rows"]] == ["0001.wav", "0002.wav"]
    feed_stdin(monkeypatch, b"caf\xe9\n")
    bad = cli("say", "-i", "-", "-d", tmp_path / "p")
    assert bad.exit_code == 2 and "<stdin>:1: not UTF-8" in bad.stderr and not (tmp_path / "p").exists()
    feed_stdin(monkeypatch, b"")
    empty = cli("say", "-")
    assert empty.exit_code == 2 and "stdin holds no text" in empty.stderr


def test_an_interrupted_batch_resumes_and_force_renders_everything_again(cli, fake_sessions, tmp_path):
    sheet = tmp_path / "lines.csv"
    sheet.write_text("id,text\n" + "".join(f"l{n},Line number {n}.\n" for n in range(5)), encoding="utf-8")
    out = tmp_path / "out"
    fake_sessions.always(FakeSession(fail_after=2))
    broken = cli("say", "-i", sheet, "-d", out, "--batch-size", "2")
    assert broken.exit_code != 0
    assert [r["id"] for r in _manifest(out)["rows"]] == ["l0", "l1"]  # the chunk that finished
    assert not (out / "l2.wav").exists()
    (out / "l1.wav").write_bytes(b"not what was rendered")  # a damaged file is not "done"
    fresh = fake_sessions.always(FakeSession())
    resumed = json.loads(cli("--json", "say", "-i", sheet, "-d", out, "--batch-size", "2").stdout)
    assert (resumed["generated"], resumed["skipped"]) == (4, 1)
    assert [r.text for r in fresh.requests][0] == "Line number 1."
    sheet.write_text("id,text\n" + "".join(f"l{n},Line number {n}.\n" for n in range(4)) + "l4,Changed.\n",
                     encoding="utf-8")
    changed = json.loads(cli("--json", "say", "-i", sheet, "-d", out).stdout)
    assert (changed["generated"], changed["skipped"]) == (1, 4)  # only the row whose recipe changed
    forced = json.loads(cli("--json", "say", "-i", sheet, "-d", out, "--force").stdout)
    assert (forced["generated"], forced["skipped"]) == (5, 0)


def test_a_batch_whose_session_never_opens_leaves_no_folder_behind(cli, fake_sessions, tmp_path):
    from higgs_cli.errors import UsageError

    def refuse(spec):
        raise UsageError("the Ray cluster at head:6379 refused the authentication token from $RAY_AUTH_TOKEN")

    sheet = tmp_path / "lines.csv"
    sheet.write_text("id,text\nhello,Hello there.\n", encoding="utf-8")
    fake_sessions.make = refuse
    failed = cli("say", "-i", sheet, "-d", tmp_path / "out")
    assert failed.exit_code == 2 and "refused the authentication token" in failed.stderr
    assert not (tmp_path / "out").exists()  # not even the lock file's folder
    (tmp_path / "kept").mkdir()
    assert cli("say", "-i", sheet, "-d", tmp_path / "kept").exit_code == 2
    assert (tmp_path / "kept").is_dir()  # a folder the user had stays


def test_files_no_manifest_lists_are_not_overwritten(cli, session, tmp_path):
    sheet = tmp_path / "a.csv"
    sheet.write_text("id,text\nmine,Hello.\n", encoding="utf-8")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.wav").write_bytes(b"someone's file")
    result = cli("say", "-i", sheet, "-d", tmp_path / "o")
    assert result.exit_code == 2 and "refusing to overwrite" in result.stderr
    assert (tmp_path / "o" / "mine.wav").read_bytes() == b"someone's file" and session.requests == []


def test_a_link_planted_where_a_row_goes_is_never_written_through(cli, session, tmp_path):
    """Issue 31.1: a row's file goes inside --output-dir, never through a link someone left there,
    even with --force, which may replace files but not follow links."""
    sheet = tmp_path / "a.csv"
    sheet.write_text("id,text\nmine,Hello.\n", encoding="utf-8")
    (tmp_path / "o").mkdir()
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"not yours")
    (tmp_path / "o" / "mine.wav").symlink_to(victim)
    result = cli("say", "-i", sheet, "-d", tmp_path / "o", "--force")
    assert result.exit_code == 2 and "symbolic link" in result.stderr, result.output
    assert victim.read_bytes() == b"not yours" and session.requests == []


@pytest.mark.parametrize("name, content, message", [
    ("a.csv", "id,words\n1,Hello.\n", "a.csv:1: there is no 'text' column"),
    ("a.csv", "id;text\n1;Hello.\n", "a.csv:1: the header is one column, 'id;text': the file seems to be "
                                     "separated by semicolons"),
    ("a.csv", "id,text\n1,Hello.\n2,Hi,there\n", "a.csv:3: this row has 3 field(s), the header has 2"),
    ("a.csv", "id,text\n../../etc/x,Hello.\n", "a.csv:2: id '../../etc/x' would name a file outside"),
    ("a.csv", "id,text\nx,Hello.\nX,Again.\n", "a.csv:3: id 'X' is used twice (first on line 2)"),
    ("a.csv", "id,text\nx,\"Quoted\nover lines.\"\ny,\n", "a.csv:4: text is empty"),
    ("a.csv", "text,seed\nHello.,minus one\n", "a.csv:2: seed must be"),
    ("a.csv", "text,format\nHello.,aiff\n", "a.csv:2: format 'aiff' cannot be written"),
    ("a.csv", "text,scene,direction\nHello.,a,b\n", "columns 'scene' and 'direction' mean the same thing"),
    ("a.jsonl", '{"text": "ok"}\n{"text": "broken"\n', "a.jsonl:2: not valid JSON"),
    ("a.jsonl", '["text"]\n', "a.jsonl:1: each line must be a JSON object"),
    ("a.jsonl", '{"text": ["a"]}\n', "a.jsonl:1: text must be text, not list"),
    ("a.txt", "fine\n" + "x" * 6000 + "\n", "a.txt:2: text is 6000 characters long"),
    ("a.txt", "fine\n\u200b\u200b\n", "a.txt:2: text has nothing to speak"),
    ("a.csv", "id,text,voice\n1,Hi.,nobody\n", "a.csv:2: no voice named 'nobody'"),
    ("a.docx", "text\n", "unknown input type '.docx'"),
])
def test_a_bad_file_is_refused_with_its_line_and_nothing_is_written(cli, session, tmp_path, name, content, message):
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    result = cli("say", "--input-file", source, "--output-dir", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert message in result.stderr.replace(str(tmp_path) + "/", ""), result.stderr
    assert "Traceback" not in result.output and session.requests == [] and not (tmp_path / "o").exists()


def test_every_bad_row_is_listed_at_once_and_json_carries_them(cli, session, tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("id,text\n/abs,One.\nok,\nfine,Two.\n", encoding="utf-8")
    result = cli("--json", "say", "-i", source, "-d", tmp_path / "o")
    data = json.loads(result.stdout)
    assert result.exit_code == 2 and len(data["problems"]) == 2
    assert data["problems"][0].endswith("a.csv:2: id '/abs' would name a file outside the output folder")


@pytest.mark.parametrize("args, message", [
    (("say", "hi", "--input-file", "x.csv", "--output-dir", "o"), "not both"),
    (("say", "--input-file", "x.csv"), "go together"),
    (("say", "--input-file", "x.csv", "-d", "o", "-o", "y.wav"), "-o/--output does not go with --input-file"),
    (("say", "--input-file", "x.csv", "-d", "o", "--format", "doc"), "--format doc"),
    (("say",), "give TEXT to speak"),
])
def test_flags_that_do_not_go_together(cli, session, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.csv").write_text("text\nHello.\n", encoding="utf-8")
    result = cli(*args)
    assert result.exit_code == 2 and message in result.stderr, result.output


@pytest.mark.parametrize("fmt, rate", [("wav", 24_000), ("flac", 24_000), ("mp3", 44_100)])
def test_row_files_have_the_rates_the_docs_give(cli, session, tmp_path, fmt, rate):
    """docs/batch.md: rows are 24 kHz, the model's rate, except MP3 (and M4B) at 44.1 kHz."""
    source = tmp_path / "lines.csv"
    source.write_text("id,text\na,Hello there.\n", encoding="utf-8")
    assert cli("say", "--input-file", source, "--output-dir", tmp_path / "o", "--format", fmt).exit_code == 0
    assert sf.info(str(tmp_path / "o" / f"a.{fmt}")).samplerate == rate
    assert "MP3 and M4B at 44.1 kHz" in (ROOT / "docs" / "batch.md").read_text(encoding="utf-8").replace("\n", " ")


@pytest.mark.parametrize("url", ["gs://b/out", "s3://b/out"])
def test_an_output_dir_url_is_refused_as_written(cli, session, tmp_path, url, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "lines.csv"
    source.write_text("text\nHello.\n", encoding="utf-8")
    result = cli("say", "--input-file", source, "--output-dir", url)
    assert result.exit_code == 2 and f"--output-dir {url}:" in result.stderr and "local folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lines.csv"] and session.requests == []
