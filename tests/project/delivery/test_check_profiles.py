"""`higgs project check` and `output.profile` (issue 20 item 4): a build mastered to a profile passes its
check; the check's figures agree with ffmpeg's `ebur128` filter on the delivered (encoded) file; a build
made without the profile fails with one row per rule; bad input is refused with exit code 2."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from delivery_helpers import FFMPEG, book, ffprobe, needs_ffmpeg, render

pytestmark = needs_ffmpeg


def ebur128(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's ebur128 filter reads `path`."""
    err = subprocess.run([FFMPEG, "-nostats", "-hide_banner", "-i", str(path), "-filter_complex",
                          "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = err[err.rindex("Summary:"):]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return lufs, peak


def check(cli, folder: Path, *args: str):
    result = cli("--json", "project", "check", folder, *args)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def figure(report: dict, rule: str, file: str | None = None):
    [row] = [r for r in report["rows"] if r["rule"] == rule and (file is None or r["file"] == file)]
    return row


@pytest.mark.parametrize("fmt", ["mp3", "m4b"])
def test_a_podcast_passes_its_check_and_agrees_with_ffmpeg(cli, fake_model, tmp_path, fmt):
    from higgs_cli.audio.io import supported_output_formats

    if fmt not in supported_output_formats():
        pytest.skip(f"this installation cannot write {fmt}")
    show = book(tmp_path / "show", sections=2, lines=3, output=f"format: {fmt}, profile: podcast, loudness: -30")
    master = Path(render(cli, show)["outputs"]["master"])
    result, report = check(cli, show)  # the profile comes from the project
    assert result.exit_code == 0, result.output
    assert report["passed"] and report["profile"] == "podcast"
    assert {r["rule"] for r in report["rows"]} == {"integrated loudness", "true peak", "DC offset", "length"}
    lufs, peak = ebur128(master)
    assert figure(report, "integrated loudness")["figure"] == pytest.approx(lufs, abs=0.5)
    assert figure(report, "true peak")["figure"] == pytest.approx(peak, abs=0.5)
    assert lufs == pytest.approx(-16.0, abs=1.0) and peak < -1.0  # the profile's target, not output.loudness


def test_acx_mastering_passes_every_acx_rule_on_each_file(cli, fake_model, tmp_path):
    show = book(tmp_path / "show", sections=2, lines=3, output="profile: acx, split: section")
    summary = render(cli, show)
    master = Path(summary["outputs"]["master"])
    assert master.suffix == ".mp3"  # the profile sets the format
    stream = ffprobe(master)["streams"][0]
    assert (stream["codec_name"], int(stream["sample_rate"]), int(stream["bit_rate"])) == ("mp3", 44100, 192000)
    result, report = check(cli, show, "--profile", "acx")
    assert result.exit_code == 0, result.output
    files = {r["file"] for r in report["rows"]}
    assert files == {master.name, "sections/01_ch1.mp3", "sections/02_ch2.mp3"}
    for name in files:
        rules = {r["rule"]: r for r in report["rows"] if r["file"] == name}
        assert set(rules) == {"format", "sample rate", "bitrate", "RMS", "true peak", "noise floor", "DC offset",
                              "head room tone", "tail room tone", "length"}
        assert all(r["passed"] for r in rules.values()), rules
        assert 0.5 <= rules["head room tone"]["figure"] <= 1.0 and 1.0 <= rules["tail room tone"]["figure"] <= 5.0
        assert -23 <= rules["RMS"]["figure"] <= -18 and rules["noise floor"]["figure"] < -60


def test_a_build_without_the_profile_fails_with_a_row_per_rule(cli, fake_model, tmp_path):
    show = book(tmp_path / "show", output="format: wav, loudness: -30")
    render(cli, show)
    result, report = check(cli, show, "--profile", "broadcast")
    assert result.exit_code == 1 and report["passed"] is False
    row = figure(report, "integrated loudness")
    assert not row["passed"] and row["limit"] == "-23 ± 0.5 LUFS" and row["figure"] < -25
    result, report = check(cli, show, "--profile", "acx")
    assert result.exit_code == 1
    assert not figure(report, "format")["passed"] and figure(report, "format")["figure"] == "wav"
    assert not figure(report, "head room tone")["passed"]
    human = cli("project", "check", show, "--profile", "acx")
    assert human.exit_code == 1 and "FAIL" in human.stdout and "head room tone" in human.stdout


def test_broadcast_mastering_passes_r128(cli, fake_model, tmp_path):
    show = book(tmp_path / "show", sections=1, lines=4, output="format: flac, profile: broadcast")
    master = Path(render(cli, show)["outputs"]["master"])
    result, report = check(cli, show)
    assert result.exit_code == 0, result.output
    lufs, peak = ebur128(master)
    assert lufs == pytest.approx(-23.0, abs=0.5) and peak < -1.0


def test_bad_input_is_refused_with_exit_code_2(cli, fake_model, tmp_path):
    show = book(tmp_path / "show")
    result = cli("project", "check", show, "--profile", "acx")
    assert result.exit_code == 2 and "no build to check" in result.stderr and "render" in result.stderr
    render(cli, show)
    result = cli("project", "check", show, "--profile", "radio")
    assert result.exit_code == 2 and "unknown profile 'radio'" in result.stderr and "acx" in result.stderr
    result = cli("project", "check", show)  # no profile given, none in the project
    assert result.exit_code == 2 and "--profile" in result.stderr
    assert "Traceback" not in result.output
    (show / "project.yaml").write_text((show / "project.yaml").read_text().replace("output: {}",
                                                                                  "output: {profile: radio}"))
    result = cli("project", "validate", show)
    assert result.exit_code == 2 and "profile" in result.stderr


def test_true_peak_agrees_with_ffmpeg_on_a_limited_mp3(cli, fake_model, tmp_path):
    """A master pushed into the limiter: its peaks sit at the ceiling, where the MP3 encoder moves them."""
    show = book(tmp_path / "show", sections=1, lines=4, output="format: mp3, loudness: -6, peak: -1")
    master = Path(render(cli, show)["outputs"]["master"])
    result, report = check(cli, show, "--profile", "podcast")
    assert result.exit_code == 1  # far louder than -16 LUFS
    lufs, peak = ebur128(master)
    assert peak > -3.0  # the limiter was working
    assert figure(report, "true peak")["figure"] == pytest.approx(peak, abs=0.5)
    assert figure(report, "integrated loudness")["figure"] == pytest.approx(lufs, abs=0.5)
    assert not figure(report, "integrated loudness")["passed"]


def test_check_delivery_is_what_validate_and_render_call(tmp_path):
    """The library check (no model): the cover is read and judged, the format must be writable."""
    from delivery_helpers import png_bytes

    from higgs_cli.errors import UsageError
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project.building.delivery import check_delivery
    from higgs_cli.project.reading.load import load_project

    show = book(tmp_path / "show", output="format: mp3, cover: cover.jpg")
    (show / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    cover = check_delivery(load_project(show, tasks=get_tasks()))
    assert cover is not None and cover.mime == "image/jpeg"
    (show / "cover.jpg").write_bytes(png_bytes())  # the content decides, not the name
    assert check_delivery(load_project(show, tasks=get_tasks())).mime == "image/png"
    (show / "cover.jpg").write_text("not an image")
    with pytest.raises(UsageError, match=r"output.cover 'cover.jpg' is not a PNG or JPEG image"):
        check_delivery(load_project(show, tasks=get_tasks()))
    show = book(tmp_path / "low", output="format: mp3, sample_rate: 16000, bitrate: 192")
    with pytest.raises(UsageError, match="output.bitrate: 192 kbps is not a bitrate an MP3 at 16000 Hz") as caught:
        check_delivery(load_project(show, tasks=get_tasks()))
    assert "144, 160" in caught.value.hint
    show = book(tmp_path / "aac", output="format: m4b, sample_rate: 16000")  # the default 192 kbps
    with pytest.raises(UsageError, match="192 kbps is not a bitrate an M4B at 16000 Hz") as caught:
        check_delivery(load_project(show, tasks=get_tasks()))
    assert "80, 96" in caught.value.hint


@pytest.mark.slow
def test_a_podcast_rendered_by_the_tiny_model_agrees_with_ffmpeg(cli, tiny_model, tmp_path):
    """Random-init weights speak noise with much energy near Nyquist: the hard case for true peak."""
    show = book(tmp_path / "show", sections=2, lines=2, output="format: mp3, profile: podcast")
    text = (show / "project.yaml").read_text().replace("defaults: {seed: 3}", "defaults: {seed: 3, max_seconds: 2}")
    (show / "project.yaml").write_text(text)
    result = cli("--json", "project", "render", show, "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    master = Path(json.loads(result.stdout)["outputs"]["master"])
    result, report = check(cli, show)
    lufs, peak = ebur128(master)
    assert figure(report, "integrated loudness")["figure"] == pytest.approx(lufs, abs=0.5)
    assert figure(report, "true peak")["figure"] == pytest.approx(peak, abs=0.5)
    assert result.exit_code == 0, result.output  # mastered to the profile: it passes
