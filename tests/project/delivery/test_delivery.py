"""Delivery formats (issue 20 item 3), read back with tools this project did not write: ffprobe for
the M4B's and MP3's chapters, tags, rate and cover; mutagen for the ID3 frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from delivery_helpers import book, chapters, ffprobe, manifest_of, needs_ffmpeg, png_bytes, render

from higgs_cli.audio.io import supported_output_formats

pytestmark = needs_ffmpeg


def _section_starts(manifest: dict) -> dict[str, float]:
    firsts: dict[str, float] = {}
    for line in manifest["lines"]:
        firsts.setdefault(line["section"], line["start"])
    return firsts


def _check_chapters(master: Path, manifest: dict) -> None:
    starts = _section_starts(manifest)
    found = chapters(master)
    assert [title for title, _, _ in found] == list(starts)
    assert found[0][1] == pytest.approx(0.0, abs=0.002)
    for (_, start, _), section in zip(found[1:], list(starts)[1:]):
        assert start == pytest.approx(starts[section], abs=0.002)  # ms resolution
    for (_, _, end), (_, start, _) in zip(found, found[1:]):
        assert end == pytest.approx(start, abs=0.002)  # no gaps, no overlaps
    assert found[-1][2] == pytest.approx(manifest["duration"], abs=0.002)


def test_m4b_has_a_chapter_per_section_metadata_and_a_cover(cli, fake_model, tmp_path):
    if "m4b" not in supported_output_formats():
        pytest.skip("PyAV with an AAC encoder is not installed")
    show = book(tmp_path / "show", sections=3, output="format: m4b, cover: cover.png")
    (show / "cover.png").write_bytes(png_bytes())
    summary = render(cli, show)
    master = Path(summary["outputs"]["master"])
    assert master.name == "the-long-book.m4b"
    probe = ffprobe(master)
    audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert [(s["codec_name"], int(s["sample_rate"]), s["channels"]) for s in audio] == [("aac", 44100, 1)]
    assert any(s.get("codec_name") == "png" and s.get("disposition", {}).get("attached_pic") for s in probe["streams"])
    tags = {k.lower(): v for k, v in probe["format"]["tags"].items()}
    assert (tags["title"], tags["artist"], tags["composer"]) == ("The Long Book", "Ada Author", "Ned Narrator")
    manifest = manifest_of(show)
    assert manifest["sample_rate"] == 44100
    assert float(probe["format"]["duration"]) == pytest.approx(manifest["duration"], abs=0.05)
    _check_chapters(master, manifest)

    from mutagen.mp4 import MP4

    assert bytes(MP4(str(master)).tags["covr"][0]) == png_bytes()


def test_a_section_title_names_its_chapter_and_its_file(cli, fake_model, tmp_path):
    show = book(tmp_path / "show", sections=2, output="format: mp3, split: section")
    text = (show / "project.yaml").read_text(encoding="utf-8")
    (show / "project.yaml").write_text(text.replace("  - id: ch2\n", "  - id: ch2\n    title: \"Chapter 2: Rain\"\n"),
                                       encoding="utf-8")
    summary = render(cli, show)
    assert [title for title, _, _ in chapters(Path(summary["outputs"]["master"]))] == ["ch1", "Chapter 2: Rain"]
    from mutagen.id3 import ID3

    second = sorted((show / "build" / "sections").iterdir())[1]
    assert str(ID3(second)["TIT2"]) == "Chapter 2: Rain"
    status = cli("--json", "project", "status", show)
    assert json.loads(status.stdout)["outputs_current"] is True
    (show / "project.yaml").write_text((show / "project.yaml").read_text(encoding="utf-8").replace(
        "Chapter 2: Rain", "Chapter 2: Snow"), encoding="utf-8")
    assert json.loads(cli("--json", "project", "status", show).stdout)["outputs_current"] is False


def test_mp3_has_id3_tags_and_chap_ctoc_frames(cli, fake_model, tmp_path):
    show = book(tmp_path / "show", sections=2, output="format: mp3, bitrate: 128, cover: art/cover.png")
    (show / "art").mkdir()
    (show / "art" / "cover.png").write_bytes(png_bytes())
    master = Path(render(cli, show)["outputs"]["master"])
    manifest = manifest_of(show)
    _check_chapters(master, manifest)
    assert int(ffprobe(master)["streams"][0]["bit_rate"]) == 128_000

    from mutagen.id3 import ID3

    frames = ID3(str(master))
    assert frames["TIT2"].text == ["The Long Book"] and frames["TPE1"].text == ["Ada Author"]
    assert frames["TCOM"].text == ["Ned Narrator"]
    [toc] = frames.getall("CTOC")
    chaps = {c.element_id: c for c in frames.getall("CHAP")}
    assert toc.child_element_ids == sorted(chaps, key=lambda e: chaps[e].start_time)  # ordered, every chapter
    ordered = [chaps[e] for e in toc.child_element_ids]
    assert [c.sub_frames["TIT2"].text[0] for c in ordered] == ["ch1", "ch2"]
    starts = _section_starts(manifest)
    assert [c.start_time for c in ordered] == [0, round(starts["ch2"] * 1000)]
    assert ordered[-1].end_time == round(manifest["duration"] * 1000)
    [cover] = frames.getall("APIC")
    assert cover.mime == "image/png" and cover.data == png_bytes()


def test_split_by_section_writes_one_file_per_section(cli, fake_model, tmp_path):
    show = book(tmp_path / "show", sections=3, output="format: flac, split: section, sample_rate: 48000")
    summary = render(cli, show)
    manifest = manifest_of(show)
    sections = [Path(p) for p in summary["outputs"]["sections"]]
    assert [p.name for p in sections] == ["01_ch1.flac", "02_ch2.flac", "03_ch3.flac"]
    assert manifest["outputs"]["sections"] == [f"sections/{p.name}" for p in sections]
    probes = [ffprobe(p) for p in sections]
    assert {int(p["streams"][0]["sample_rate"]) for p in probes} == {48000}
    assert manifest["sample_rate"] == 48000 and int(ffprobe(Path(summary["outputs"]["master"]))["streams"][0][
        "sample_rate"]) == 48000
    lengths = [float(p["format"]["duration"]) for p in probes]
    assert sum(lengths) == pytest.approx(manifest["duration"], abs=0.01)  # the master, cut at section starts
    assert {p["format"]["tags"].get("TITLE") or p["format"]["tags"].get("title") for p in probes} == {
        "ch1", "ch2", "ch3"}
    tags = [{k.lower(): v for k, v in p["format"]["tags"].items()} for p in probes]  # issue 35.5: track numbers
    assert [(t.get("track"), t.get("tracktotal")) for t in tags] == [("1", "3"), ("2", "3"), ("3", "3")]

    (show / "project.yaml").write_text((show / "project.yaml").read_text().replace("split: section", "split: none"))
    summary = render(cli, show)
    assert "sections" not in summary["outputs"] and not (show / "build" / "sections").exists()


def test_missing_lines_are_left_out_of_master_stems_and_subtitles(cli, fake_model, tmp_path):
    """A partial build (lines never rendered): write_build leaves them out and lists them as missing."""
    from fakes import FakeSession

    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project.building.assemble import LineAudio, write_build
    from higgs_cli.project.folder.store import Store, line_keys
    from higgs_cli.project.planning.plan import global_context, plan_project
    from higgs_cli.project.reading.load import load_project

    show = book(tmp_path / "show", sections=2, lines=2)
    full = render(cli, show)
    project = load_project(show, tasks=get_tasks())
    session = FakeSession()
    planned = plan_project(project, session, None, tasks=get_tasks())
    keys = line_keys(planned, global_context(planned), model_id=session.model_id, codec_id=session.codec_id)
    store = Store(project.root)
    entries = [store.get(k) for k in keys]
    lines = [LineAudio(frames=e.codes.shape[1], finished=True, generated=False, missing=i == 1)
             for i, e in enumerate(entries)]
    from delivery_helpers import FAKE

    outputs, manifest = write_build(project, show / "build", planned, keys, lines, store, FAKE)
    assert [m.missing for m in manifest.lines] == [False, True, False, False]
    assert manifest.lines[1].stem is None and manifest.lines[1].start == manifest.lines[1].end
    assert len(outputs["stems"]) == 3 and not (show / "build" / "stems" / "ch1_002_reader.wav").exists()
    assert manifest.duration < full["duration"]
    srt = (show / "build" / "the-long-book.srt").read_text(encoding="utf-8")
    assert "sentence 2" not in srt.split("Chapter 2")[0] and srt.count("-->") == 3
    page = (show / "build" / "review.html").read_text(encoding="utf-8")
    assert page.count('<tr class="line missing"') == 1 and page.count('<tr class="line ') == 4


@pytest.mark.parametrize(("cover", "content", "message"), [
    ("cover.png", b"GIF89a not a png", "is not a PNG or JPEG image"),
    ("nothere.jpg", None, "does not exist"),
    ("../outside.png", png_bytes(), "lies outside the project folder"),
])
def test_a_bad_cover_is_refused_before_anything_is_written(cli, fake_model, tmp_path, cover, content, message):
    show = book(tmp_path / "show", output=f"format: mp3, cover: {cover}")
    if content is not None:
        (show / cover).write_bytes(content)
    for command in ("validate", "render"):
        result = cli("project", command, show)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "output.cover" in result.stderr and "Traceback" not in result.output
    assert not fake_model  # refused before any model loads
    assert not (show / "build").exists() and not (show / ".higgs" / "cache").exists()
