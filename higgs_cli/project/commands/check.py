"""`higgs project check`: a build measured as delivered, against a delivery profile's rules.

Every delivered audio file of the build (the master, and the section files of
`output.split: section`) is decoded from its encoded form (through PyAV, at
its own sample rate: an MP3 is judged as a listener's player decodes it, not
as the WAV before it) and measured in one pass: integrated loudness (ITU-R
BS.1770), true peak (oversampled to 192 kHz or more), RMS and the noise floor
(both without the DC offset), the DC offset itself (a rule of every profile),
the room tone at the head and tail, the length, and for an MP3 its bitrate
mode. Each rule of the profile gives one row: the file, the figure, the
limit and whether it passed.

Head and tail room tone are the stretches before the first and after the last
10 ms frame louder than SOUND_DB. The noise floor is the RMS of that room
tone, or, in a file with none, of its quietest 500 ms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from higgs_cli.audio.loudness import LoudnessMeter, TruePeakMeter, to_db
from higgs_cli.audio.profiles import Profile, get_profile
from higgs_cli.errors import AudioError, UsageError
from higgs_cli.project.folder.manifest import read_manifest
from higgs_cli.project.layout import ProjectLayout

if TYPE_CHECKING:
    from higgs_cli.plugins.script import Project

SOUND_DB = -50.0  # a 10 ms frame louder than this (RMS) is programme, not room tone
_FRAME_S = 0.01
_QUIET_WINDOW_FRAMES = 50


@dataclass(frozen=True)
class FileFigures:
    """What one delivered file measures."""

    path: Path
    format: str
    sample_rate: int
    seconds: float
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    rms_db: float | None
    noise_floor_db: float | None
    dc_db: float | None  # the mean (DC offset) in dBFS; None: none at all
    head_s: float
    tail_s: float
    bitrate_kbps: float | None
    constant_bitrate: bool | None


@dataclass(frozen=True)
class Row:
    """One rule applied to one file."""

    file: str
    rule: str
    figure: float | str | None
    limit: str
    passed: bool


@dataclass(frozen=True)
class CheckReport:
    profile: str
    title: str
    build: str
    rows: list[Row]

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def to_dict(self) -> dict:
        return {"profile": self.profile, "title": self.title, "build": self.build, "passed": self.passed,
                "failed": sum(not r.passed for r in self.rows), "rows": [asdict(r) for r in self.rows]}


def decode(path: Path):
    """Yield (mono float32 block, sample rate) of the first audio stream of `path`, as a player decodes it."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio stream", hint="render the project again")
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or stream.rate)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1), rate
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1), rate
    except av.FFmpegError as error:
        raise AudioError(f"{path} cannot be decoded: {error}", hint="render the project again") from None


def measure_file(path: Path) -> FileFigures:
    """Measure the delivered file `path` in one pass over its decoded audio. RMS and the noise floor
    are those of the DC-free signal (the file's mean taken out), and the DC offset is its own figure:
    an offset is not sound, and counted as RMS it would pass a file that is silent."""
    loudness = peak = None
    total, energy, samples, rate = 0.0, 0.0, 0, 0
    squares: list[np.ndarray] = []  # mean square of each 10 ms frame
    means: list[np.ndarray] = []  # mean of each 10 ms frame
    rest = np.zeros(0, np.float64)
    for block, rate in decode(path):
        if loudness is None:
            loudness, peak = LoudnessMeter(rate), TruePeakMeter(rate)
        x = block.astype(np.float64)
        loudness.add(x)
        peak.add(x)
        total += float(x.sum())
        energy += float(np.dot(x, x))
        samples += x.size
        hop = max(1, round(_FRAME_S * rate))
        joined = np.concatenate([rest, x])
        whole = joined.size // hop * hop
        if whole:
            frames = joined[:whole].reshape(-1, hop)
            squares.append((frames ** 2).mean(axis=1))
            means.append(frames.mean(axis=1))
        rest = joined[whole:]
    if loudness is None or samples == 0:
        raise AudioError(f"{path} holds no audio", hint="render the project again")
    if rest.size:
        squares.append(np.array([float((rest ** 2).mean())]))
        means.append(np.array([float(rest.mean())]))
    dc = total / samples
    # E[(x - dc)^2] over a frame = E[x^2] - 2 dc E[x] + dc^2
    power = np.maximum(np.concatenate(squares) - 2.0 * dc * np.concatenate(means) + dc * dc, 0.0)
    head, tail, floor = _room_tone(power)
    bitrate, cbr = _bitrate(path)
    return FileFigures(
        path=path, format=path.suffix.lower().lstrip("."), sample_rate=rate, seconds=samples / rate,
        loudness_lufs=loudness.integrated(), true_peak_dbtp=to_db(peak.finish()),
        rms_db=_db(max(energy / samples - dc * dc, 0.0)), noise_floor_db=floor, dc_db=to_db(abs(dc)), head_s=head,
        tail_s=tail, bitrate_kbps=bitrate, constant_bitrate=cbr)


def _db(mean_square: float) -> float | None:
    return 10.0 * math.log10(mean_square) if mean_square > 0 else None


def _room_tone(power: np.ndarray) -> tuple[float, float, float | None]:
    """Seconds of room tone at the head and tail, and the noise floor in dB (None: digital silence)."""
    loud = np.flatnonzero(power > 10.0 ** (SOUND_DB / 10.0))
    if loud.size == 0:
        return power.size * _FRAME_S, power.size * _FRAME_S, _db(float(power.mean()))
    first, last = int(loud[0]), int(loud[-1])
    tone = np.concatenate([power[:first], power[last + 1:]])
    if tone.size >= 10:  # at least 100 ms of room tone to judge by
        return first * _FRAME_S, (power.size - last - 1) * _FRAME_S, _db(float(tone.mean()))
    window = min(_QUIET_WINDOW_FRAMES, power.size)
    sums = np.convolve(power, np.ones(window) / window, mode="valid")
    return first * _FRAME_S, (power.size - last - 1) * _FRAME_S, _db(float(sums.min()))


def _bitrate(path: Path) -> tuple[float | None, bool | None]:
    """An MP3's bitrate (kbps) and whether it is constant, as mutagen reads its header; None for others."""
    if path.suffix.lower() != ".mp3":
        return None, None
    from mutagen.mp3 import MP3, BitrateMode

    info = MP3(str(path)).info
    return info.bitrate / 1000.0, info.bitrate_mode == BitrateMode.CBR


def _fmt(value: float | None, unit: str) -> str:
    return "silent" if value is None else f"{value:.1f} {unit}"


def rules(profile: Profile, f: FileFigures, name: str) -> list[Row]:
    """The rows of `profile`'s rules for the file figures `f`."""
    rows: list[Row] = []

    def add(rule: str, figure, limit: str, passed: bool) -> None:
        rows.append(Row(name, rule, round(figure, 2) if isinstance(figure, float) else figure, limit, bool(passed)))

    if profile.format:
        add("format", f.format, profile.format, f.format == profile.format)
    if profile.sample_rate:
        add("sample rate", f.sample_rate, f"{profile.sample_rate} Hz", f.sample_rate == profile.sample_rate)
    if profile.bitrate:
        ok = f.bitrate_kbps is not None and abs(f.bitrate_kbps - profile.bitrate) < 1.0 and bool(f.constant_bitrate)
        add("bitrate", f"{f.bitrate_kbps:.0f} kbps {'CBR' if f.constant_bitrate else 'VBR'}"
            if f.bitrate_kbps is not None else "n/a", f"{profile.bitrate} kbps CBR", ok)
    if profile.loudness_lufs is not None:
        lo, hi = profile.loudness_lufs - profile.loudness_tolerance, profile.loudness_lufs + profile.loudness_tolerance
        add("integrated loudness", f.loudness_lufs, f"{profile.loudness_lufs:g} ± {profile.loudness_tolerance:g} LUFS",
            f.loudness_lufs is not None and lo <= f.loudness_lufs <= hi)
    if profile.rms_db is not None:
        lo, hi = profile.rms_db
        add("RMS", f.rms_db, f"{lo:g} to {hi:g} dB", f.rms_db is not None and lo <= f.rms_db <= hi)
    add("true peak", f.true_peak_dbtp, f"under {profile.max_peak_db:g} dBTP",
        f.true_peak_dbtp is None or f.true_peak_dbtp < profile.max_peak_db)
    if profile.max_noise_floor_db is not None:
        add("noise floor", f.noise_floor_db, f"under {profile.max_noise_floor_db:g} dB",
            f.noise_floor_db is None or f.noise_floor_db < profile.max_noise_floor_db)
    add("DC offset", f.dc_db, f"under {profile.max_dc_db:g} dBFS", f.dc_db is None or f.dc_db < profile.max_dc_db)
    if profile.head_s is not None:
        lo, hi = profile.head_s
        add("head room tone", f.head_s, f"{lo:g} to {hi:g} s", lo <= f.head_s + 1e-9 and f.head_s <= hi + 1e-9)
    if profile.tail_s is not None:
        lo, hi = profile.tail_s
        add("tail room tone", f.tail_s, f"{lo:g} to {hi:g} s", lo <= f.tail_s + 1e-9 and f.tail_s <= hi + 1e-9)
    limit = f"at least {profile.min_seconds:g} s" + (f", at most {profile.max_minutes:g} min"
                                                      if profile.max_minutes else "")
    add("length", f.seconds, limit, f.seconds >= profile.min_seconds
        and (profile.max_minutes is None or f.seconds <= profile.max_minutes * 60.0))
    return rows


def delivered_files(build: Path) -> list[Path]:
    """The build's delivered audio: the master and any section files, as its manifest lists them."""
    manifest = read_manifest(build)
    if manifest is None:
        raise UsageError(f"there is no build to check in {build} (no higgs manifest.json)",
                         hint="render the project first: higgs project render PATH")
    listed = [manifest.outputs.get("master"), *(manifest.outputs.get("sections") or [])]
    inside = set(manifest.files(build))  # never a path outside the build, whatever the manifest says
    files = [build / rel for rel in listed if isinstance(rel, str) and build / rel in inside]
    lost = [path for path in files if not path.is_file()]
    if not files or lost:
        raise UsageError(f"the build in {build} is incomplete: {', '.join(str(p) for p in lost) or 'no master'} "
                         f"missing", hint="render the project again")
    return files


def check_build(project: Project, profile_name: str | None = None, *, out_dir: Path | None = None) -> CheckReport:
    """Measure every delivered file of `project`'s build against the profile (default: `output.profile`)."""
    name = profile_name or (project.output.profile if project.output.profile not in (None, "none") else None)
    if name is None:
        raise UsageError("no profile to check against",
                         hint="pass --profile acx, podcast or broadcast, or set output.profile in the project")
    profile = get_profile(name)
    build, _ = ProjectLayout(project.root).build_dir(out_dir)
    rows: list[Row] = []
    for path in delivered_files(build):
        rows.extend(rules(profile, measure_file(path), path.relative_to(build).as_posix()))
    return CheckReport(profile=profile.name, title=project.title, build=str(build), rows=rows)
