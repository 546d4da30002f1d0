"""A build carries no DC offset (issue 35.1): stems are DC-free and unmastered, the master is
high-passed before its loudness is measured, and `project check` reads RMS and the noise floor
without the DC and flags a DC offset as its own rule."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeSession, make_project, section

from higgs_cli.audio.cleanup import DEFAULT_HIGHPASS_HZ
from higgs_cli.audio.io import SAMPLE_RATE, write_audio
from higgs_cli.audio.loudness import measure_loudness
from higgs_cli.audio.profiles import get_profile
from higgs_cli.project.building.mastering import line_highpass
from higgs_cli.project.building.render import render_project
from higgs_cli.project.commands.check import measure_file, rules

DC = 0.3  # -10.5 dBFS, as the random checkpoint's every line carries about that much


class OffsetSession(FakeSession):
    """The fake's tones with a DC offset and a 15 Hz rumble under them."""

    def decode(self, codes):
        audio = super().decode(codes).astype(np.float64)
        t = np.arange(audio.size) / SAMPLE_RATE
        return (0.5 * audio + DC + 0.1 * np.sin(2 * np.pi * 15.0 * t)).astype(np.float32)


def _dc_db(x) -> float:
    return 20 * np.log10(max(abs(float(np.mean(x))), 1e-12))


def test_stems_and_master_carry_no_dc_and_the_loudness_target_is_met(tmp_path):
    lines = [("alice", "Hello there."), ("bob", "Hi."), ("alice", "How are you today?")]
    project = make_project(tmp_path, [section("talk", "dialogue", *lines)])
    summary = render_project(project, OffsetSession())
    build = tmp_path / "build"
    for stem in sorted((build / "stems").iterdir()):
        audio, _ = sf.read(stem)
        assert _dc_db(audio) < -60.0, stem.name  # unmastered, but DC-free
    master, rate = sf.read(summary.outputs["master"])
    assert _dc_db(master) < -60.0
    assert measure_loudness(master, rate) == pytest.approx(project.output.loudness, abs=0.5)
    assert project.output.highpass == DEFAULT_HIGHPASS_HZ
    figures = measure_file(summary.outputs["master"])
    assert figures.dc_db < -60.0
    [row] = [r for r in rules(get_profile("podcast"), figures, "master") if r.rule == "DC offset"]
    assert row.passed


def test_check_measures_rms_and_noise_floor_without_dc_and_flags_it(tmp_path):
    rng = np.random.default_rng(0)
    speech = 0.05 * rng.standard_normal(4 * SAMPLE_RATE)
    speech[: SAMPLE_RATE // 2] = 0.0005 * rng.standard_normal(SAMPLE_RATE // 2)  # room tone at the head
    with_dc = write_audio(tmp_path / "dc.wav", (speech + DC).astype(np.float32))
    clean = write_audio(tmp_path / "clean.wav", speech.astype(np.float32))
    dirty, plain = measure_file(with_dc), measure_file(clean)
    assert dirty.dc_db == pytest.approx(20 * np.log10(DC), abs=0.1)
    assert dirty.rms_db == pytest.approx(plain.rms_db, abs=0.1)  # the DC is not counted as sound
    assert dirty.noise_floor_db == pytest.approx(plain.noise_floor_db, abs=1.0)
    assert dirty.head_s == pytest.approx(plain.head_s, abs=0.02)
    rows = {r.rule: r for r in rules(get_profile("acx"), dirty, "dc.wav")}
    assert not rows["DC offset"].passed and rows["DC offset"].limit == "under -60 dBFS"
    assert {r.rule: r for r in rules(get_profile("acx"), plain, "clean.wav")}["DC offset"].passed


def test_music_lines_keep_their_low_end_and_the_corner_is_a_setting(tmp_path):
    project = make_project(tmp_path, [section("talk", "dialogue", ("alice", "Hi.")),
                                      section("song", "bgm", ("alice", "La la."), music="piano"),
                                      section("tune", "hum", ("alice", "Mm hmm."), melody="a lullaby")],
                           highpass=80.0)
    from higgs_cli.engine.request import GenerationRequest
    from higgs_cli.plugins.task import PlannedLine

    planned = [PlannedLine(s, "alice", "x", GenerationRequest(text="x"), 0.0) for s in ("talk", "song", "tune")]
    assert line_highpass(project, planned, project.output.highpass) == [80.0, 0.0, 80.0]
