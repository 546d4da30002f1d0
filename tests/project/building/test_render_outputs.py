"""What a render writes, checked through the CLI with independent readers (issue 16 items 5, 6, 11, 13):
the mastering report in the manifest and the --json summary, tags read back with mutagen, subtitle
cues parsed with `srt`, the MP3 bitrate and rate measured by ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakes import write_voice

from higgs_cli.audio.io import DEFAULT_MP3_KBPS, supported_output_formats


def write_project(folder: Path, body: str, *, voice: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if voice:
        write_voice(folder / "voices" / "alice.wav", seconds=1.0)
    (folder / "project.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    return folder


def two_speakers(folder: Path, *, top: str = "", output: str = "", defaults: str = "") -> Path:
    return write_project(folder, f"""\
        title: Test Show
        {top}
        defaults: {{seed: 1, {defaults}}}
        output: {{{output}}}
        speakers:
          alice: {{audio: voices/alice.wav, transcript: "Hello, I am Alice."}}
          bob: {{description: deep male voice}}
        script:
          - id: talk
            task: dialogue
            lines:
              - alice: "[music start] Welcome to the show! [music end]"
              - bob: How are you doing today, Alice?
              - alice: "Very well, thanks. [laugh]"
        """)


def render(cli, folder: Path, *args: str) -> dict:
    result = cli("--json", "project", "render", folder, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- mastering (item 5) -------------------------------------------------------------------------


def test_the_mastering_report_is_in_the_manifest_and_the_summary(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show")
    summary = render(cli, show)
    figures = summary["mastering"]
    assert set(figures) == {"loudness_lufs", "true_peak_dbtp", "loudness_range_lu", "target_lufs", "ceiling_dbtp",
                            "reached", "note"}
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    assert manifest["mastering"] == figures
    assert (figures["target_lufs"], figures["ceiling_dbtp"]) == (-16, -1)
    assert figures["true_peak_dbtp"] <= -1 + 0.1  # true peak, not sample peak, under the ceiling

    pyloudnorm = pytest.importorskip("pyloudnorm")
    audio, rate = sf.read(show / "build" / "test-show.wav")
    assert pyloudnorm.Meter(rate).integrated_loudness(audio) == pytest.approx(figures["loudness_lufs"], abs=0.5)


def test_a_missed_target_is_said_with_the_figures(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show", output="loudness: -5, peak: -20")  # too loud for that ceiling
    human = cli("project", "render", show)
    assert human.exit_code == 0, human.output
    assert "warning:" in human.stderr and "LU under the -5 LUFS target" in human.stderr
    assert "mastered" in human.stdout and "dBTP" in human.stdout

    (show / "project.yaml").write_text((show / "project.yaml").read_text() + "\n")  # same build, again
    result = cli("--json", "project", "render", show)
    assert result.exit_code == 0 and "warning" not in result.stderr  # in --json the note is in the JSON
    figures = json.loads(result.stdout)["mastering"]
    assert figures["reached"] is False and "-5 LUFS target" in figures["note"]


# -- tags (item 11) ------------------------------------------------------------------------------


def _tags(path: Path, fmt: str) -> dict[str, str]:
    if fmt == "flac":
        from mutagen.flac import FLAC

        return {k.lower(): v[0] for k, v in FLAC(str(path)).tags.items()}
    from mutagen.id3 import ID3
    from mutagen.wave import WAVE

    frames = WAVE(str(path)).tags if fmt == "wav" else ID3(str(path))
    names = {"TIT2": "title", "TPE1": "artist", "TALB": "album"}
    return {names[k]: str(frames[k].text[0]) for k in names if k in frames}


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_the_master_carries_title_artist_and_album(cli, fake_model, tmp_path, fmt):
    if fmt not in supported_output_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    show = write_project(tmp_path / "show", f"""\
        title: 游戏对白
        artist: Ada Lovelace
        album: "Season 1: Engines"
        output: {{format: {fmt}}}
        speakers:
          n: {{description: calm voice}}
        script:
          - task: dialogue
            lines: [{{n: Hello there.}}]
        """, voice=False)
    summary = render(cli, show)
    master = Path(summary["outputs"]["master"])
    assert master.name == f"游戏对白.{fmt}"
    assert _tags(master, fmt) == {"title": "游戏对白", "artist": "Ada Lovelace", "album": "Season 1: Engines"}


def test_artist_and_album_are_checked_like_the_title(cli, tmp_path):
    show = write_project(tmp_path / "show", """\
        title: T
        artist: [not, text]
        speakers: {n: {description: calm voice}}
        script: [{task: dialogue, lines: [{n: Hi.}]}]
        """, voice=False)
    result = cli("project", "validate", show)
    assert result.exit_code == 2 and "project.yaml:2:9: artist must be text" in result.output


def test_a_changed_artist_makes_the_build_stale(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show", top="artist: First")
    render(cli, show)
    yaml = show / "project.yaml"
    yaml.write_text(yaml.read_text().replace("artist: First", "artist: Second"))
    status = json.loads(cli("--json", "project", "status", show).stdout)
    assert status["outputs_current"] is False and status["settings_current"] is False


# -- subtitles (item 6) ---------------------------------------------------------------------------


def _cues(path: Path):
    srt = pytest.importorskip("srt")
    return list(srt.parse(path.read_text(encoding="utf-8")))


def test_crossfaded_lines_give_cues_that_do_not_overlap(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show", defaults="pause: 0", output="crossfade_ms: 500")
    render(cli, show)
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    spans = [(m["start"], m["end"]) for m in manifest["lines"]]
    assert any(a[1] > b[0] for a, b in zip(spans, spans[1:]))  # the audio does overlap
    cues = _cues(show / "build" / "test-show.srt")
    assert len(cues) == 3
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    texts = [cue.content for cue in cues]
    assert texts[0] == "alice: Welcome to the show!"  # markers are not shown, labels with two speakers
    assert not any("[" in text for text in texts)
    vtt = (show / "build" / "test-show.vtt").read_text()
    assert "[music" not in vtt and "<v alice>Welcome to the show!" in vtt


def _audiobook(folder: Path, labels: str | None = None) -> Path:
    output = f"{{subtitle_labels: {labels}}}" if labels else "{}"
    return write_project(folder, f"""\
        title: Book
        output: {output}
        speakers:
          narrator: {{audio: voices/alice.wav, transcript: "Hello, I am Alice."}}
        script:
          - task: clone
            speaker: narrator
            lines:
              - Chapter one. The lighthouse keeper climbed the hundred and twelve steps every evening, long after the lamp had learned to light itself.
              - He said the stairs kept him honest.
        """)  # noqa: E501 - a long line, as a book has


def test_a_one_speaker_audiobook_has_no_labels_and_short_lines(cli, fake_model, tmp_path):
    show = _audiobook(tmp_path / "book")
    render(cli, show)
    cues = _cues(show / "build" / "book.srt")
    assert cues and not any(cue.content.startswith("narrator:") for cue in cues)
    assert all(len(cue.content.splitlines()) <= 2 and max(map(len, cue.content.splitlines())) <= 42
               for cue in cues)


@pytest.mark.parametrize(("labels", "labelled"), [("always", True), ("never", False)])
def test_subtitle_labels_is_a_setting(cli, fake_model, tmp_path, labels, labelled):
    render(cli, _audiobook(tmp_path / "book", labels))
    cues = _cues(tmp_path / "book" / "build" / "book.srt")
    assert all(cue.content.startswith("narrator: ") == labelled for cue in cues)


def test_a_bad_subtitle_labels_value_is_refused(cli, tmp_path):
    result = cli("project", "validate", _audiobook(tmp_path / "book", "sometimes"))
    assert result.exit_code == 2
    assert "output.subtitle_labels 'sometimes' is not supported" in result.output
    assert "one of auto, always, never" in result.output


# -- MP3 (item 13) --------------------------------------------------------------------------------


def _ffprobe(path: Path) -> dict:
    out = subprocess.run([shutil.which("ffprobe"), "-v", "error", "-show_entries", "stream=bit_rate,sample_rate",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"][0]


@pytest.mark.needs_ffmpeg
@pytest.mark.parametrize("bitrate", [None, 128])
def test_an_mp3_master_has_the_bitrate_and_the_manifest_its_rate(cli, fake_model, tmp_path, bitrate):
    if "mp3" not in supported_output_formats():
        pytest.skip("this libsndfile has no MP3")
    output = "format: mp3" + (f", bitrate: {bitrate}" if bitrate else "")
    show = two_speakers(tmp_path / "show", output=output)
    summary = render(cli, show)
    stream = _ffprobe(Path(summary["outputs"]["master"]))
    assert int(stream["bit_rate"]) == 1000 * (bitrate or DEFAULT_MP3_KBPS)
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    assert manifest["sample_rate"] == int(stream["sample_rate"]) == 44_100
    stem = sf.info(str(show / "build" / manifest["lines"][0]["stem"]))
    assert stem.samplerate == 24_000  # stems stay at the model's rate


def test_a_wav_master_records_its_own_rate(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show", output="bitrate: 320")  # allowed, and ignored by WAV
    render(cli, show)
    manifest = json.loads((show / "build" / "manifest.json").read_text())
    assert manifest["sample_rate"] == sf.info(str(show / "build" / "test-show.wav")).samplerate == 24_000


def test_a_bitrate_mp3_does_not_have_is_refused(cli, tmp_path):
    result = cli("project", "validate", two_speakers(tmp_path / "show", output="format: mp3, bitrate: 150"))
    assert result.exit_code == 2 and "output.bitrate 150 is out of range" in result.output
    assert "one of 8, 16, 24, 32, 40" in result.output and "320" in result.output


# -- warnings count lines from 1 (issue 16.13) ----------------------------------------------------


def test_the_unfinished_warning_counts_lines_from_one(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show", defaults="max_seconds: 0.2")  # the fake's lines are longer
    result = cli("project", "render", show)
    assert result.exit_code == 0, result.output
    assert "talk:1, talk:2, talk:3" in result.stderr and "talk:0" not in result.stderr  # as refs name them
    summary = render(cli, show)
    assert summary["unfinished"] == ["talk:1", "talk:2", "talk:3"]


def test_status_counts_lines_from_one(cli, fake_model, tmp_path):
    show = two_speakers(tmp_path / "show")
    render(cli, show)
    table = cli("project", "status", show).stdout
    rows = [line.split()[:2] for line in table.splitlines() if line.split()[:1] == ["talk"]]
    assert rows == [["talk", "1"], ["talk", "2"], ["talk", "3"]]


def test_the_master_is_not_silent(cli, fake_model, tmp_path):
    """A guard for the tests above: the fake's tones reach the master."""
    show = two_speakers(tmp_path / "show")
    audio, _ = sf.read(render(cli, show)["outputs"]["master"])
    assert np.abs(audio).max() > 0.1
