"""Delivery profiles: what ACX, podcast platforms and broadcasters ask of a file, and how a master meets it.

A profile is data: the limits `higgs project check` holds a delivered file to
(project/commands/check.py) and the targets mastering aims at so that the check passes.
The mastering targets sit inside the limits with a margin, because a lossy
encoder moves peaks (an MP3 reads up to about 1 dB higher in true peak than
the audio it was made from) and the room tone adds a little energy.

- ACX (Audible's audiobook specs): RMS -23 to -18 dB, peaks under -3 dB,
  noise floor under -60 dB, 0.5 to 1 s of room tone at the head and 1 to 5 s
  at the tail, 44.1 kHz, 192 kbps constant-bitrate MP3, at most 120 minutes a file.
- podcast (Apple's recommendation): -16 LUFS integrated (+-1 LU), true peak under -1 dBTP.
- broadcast (EBU R128): -23 LUFS integrated (+-0.5 LU), true peak under -1 dBTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from higgs_cli.errors import UsageError

NONE = "none"


@dataclass(frozen=True)
class Profile:
    """Limits a delivered file is checked against, and the targets its mastering aims at."""

    name: str
    title: str
    # limits (what `check` holds a file to); None: no such rule
    loudness_lufs: float | None = None  # integrated loudness ...
    loudness_tolerance: float = 1.0  # ... within this many LU
    rms_db: tuple[float, float] | None = None  # whole-file RMS range, dBFS
    max_peak_db: float = -1.0  # true peak (oversampled), dBTP
    max_noise_floor_db: float | None = None
    max_dc_db: float = -60.0  # the file's mean (its DC offset), dBFS: every profile; RMS and noise floor are without it
    head_s: tuple[float, float] | None = None  # room tone before the first sound
    tail_s: tuple[float, float] | None = None  # room tone after the last sound
    sample_rate: int | None = None
    format: str | None = None
    bitrate: int | None = None  # constant bitrate, kbps
    max_minutes: float | None = None  # per file
    min_seconds: float = 1.0
    # mastering targets
    target_rms_db: float | None = None  # master to RMS instead of loudness
    ceiling_db: float = -2.0  # limiter ceiling, under max_peak_db by the encoder's margin
    head_tone_s: float = 0.0
    tail_tone_s: float = 0.0
    tone_db: float = -75.0  # RMS of the room tone laid under the whole file (when head or tail tone)


PROFILES: dict[str, Profile] = {
    "acx": Profile("acx", "ACX audiobook", rms_db=(-23.0, -18.0), max_peak_db=-3.0, max_noise_floor_db=-60.0,
                   head_s=(0.5, 1.0), tail_s=(1.0, 5.0), sample_rate=44_100, format="mp3", bitrate=192,
                   max_minutes=120.0, target_rms_db=-20.0, ceiling_db=-4.0, head_tone_s=0.75, tail_tone_s=2.5),
    "podcast": Profile("podcast", "podcast (Apple)", loudness_lufs=-16.0, loudness_tolerance=1.0, max_peak_db=-1.0,
                       ceiling_db=-2.0),
    "broadcast": Profile("broadcast", "broadcast (EBU R128)", loudness_lufs=-23.0, loudness_tolerance=0.5,
                         max_peak_db=-1.0, ceiling_db=-2.0),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`; a clear error naming the known ones otherwise."""
    profile = PROFILES.get(str(name).strip().lower())
    if profile is None:
        raise UsageError(f"unknown profile {name!r}", hint="use one of: " + ", ".join(PROFILES))
    return profile


def apply_profile(settings):
    """`settings` (an OutputSettings) as `settings.profile` masters them: loudness, peak ceiling and,
    where the profile fixes them, format, sample rate and bitrate. Without a profile, unchanged."""
    if settings.profile in (None, NONE):
        return settings
    profile = get_profile(settings.profile)
    changes: dict = {"peak": profile.ceiling_db}
    if profile.loudness_lufs is not None:
        changes["loudness"] = profile.loudness_lufs
    for key in ("format", "sample_rate", "bitrate"):
        if getattr(profile, key) is not None:
            changes[key] = getattr(profile, key)
    return dataclasses.replace(settings, **changes)


class RoomTone:
    """Quiet noise laid under a track, and before and after it, so that it never drops to digital
    silence (which ACX rejects as "dead air") and the head and tail have the room tone asked for.

    The noise is a fixed four-second loop (seeded), so the same build gives the same file.
    """

    _LOOP_S = 4.0

    def __init__(self, level_db: float, sample_rate: int) -> None:
        rng = np.random.default_rng(20_240_601)
        loop = rng.standard_normal(int(self._LOOP_S * sample_rate))
        loop *= 10.0 ** (level_db / 20.0) / np.sqrt(np.mean(loop * loop))
        self._loop = loop.astype(np.float32)

    def samples(self, start: int, count: int) -> np.ndarray:
        """The tone's samples [start, start + count) of an endless track."""
        idx = (np.arange(start, start + count) % self._loop.size) if count else np.zeros(0, int)
        return self._loop[idx]

    def around(self, blocks: Iterable[np.ndarray], head: int, tail: int) -> Iterator[np.ndarray]:
        """`head` samples of tone, `blocks` with the tone mixed under them, then `tail` samples of tone."""
        pos = 0
        if head:
            yield self.samples(0, head)
            pos = head
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            yield block + self.samples(pos, block.size)
            pos += block.size
        if tail:
            yield self.samples(pos, tail)
