"""Which constant bitrates an MP3 or M4B file can carry at each sample rate: the one source that
writing, `validate` and the docs use.

- MP3: MPEG-1 Layer III (32, 44.1, 48 kHz) has 32 to 320 kbps; MPEG-2 (16, 22.05,
  24 kHz) 8 to 160 kbps; MPEG-2.5 (8, 11.025, 12 kHz) as libsndfile's LAME encoder
  takes it, 8 to 64 kbps. libsndfile picks the bitrate from a compression level on
  the scale of the file's MPEG version (`mp3_compression`).
- M4B (AAC-LC, mono): FFmpeg's encoder takes its bitrate as a ceiling (speech and
  pauses get fewer bits) and overshoots it by up to 8%; mp4.py asks it for 85% and
  pads every frame with AAC fill elements up to the rate asked, so the file is
  constant-bitrate. An AAC frame of one channel holds at most 6144 bits (6 bits a
  sample), and under 48 kbps the encoder overshoots even so (by 5 to 30% on speech,
  measured): 48 kbps up to 6 bits a sample (96 kbps at 16 kHz, 256 at 44.1 and
  48 kHz). On noise-like audio (the random checkpoint) it may still overshoot under
  160 kbps at 44.1 kHz (128 kbps read 138).
"""

from __future__ import annotations

from higgs_cli.errors import UsageError

DEFAULT_KBPS = 192
MPEG1_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MPEG2_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
MPEG25_KBPS = (8, 16, 24, 32, 40, 48, 56, 64)
ALL_KBPS = tuple(sorted({*MPEG1_KBPS, *MPEG2_KBPS}))
"""Every bitrate some format and rate allows: what the project schema accepts before the format is known."""


def mp3_kbps(rate: int) -> tuple[int, ...]:
    """The bitrates an MP3 at `rate` Hz can carry."""
    if rate >= 32_000:
        return MPEG1_KBPS
    return MPEG2_KBPS if rate >= 16_000 else MPEG25_KBPS


def mp3_compression(kbps: int, rate: int) -> float:
    """libsndfile's compression level for a constant `kbps` at `rate`: it takes int(high - level *
    (high - low)) on its MPEG version's scale, so aim half a kbps above to survive the rounding down."""
    allowed = mp3_kbps(rate)
    low, high = (32, 320) if allowed is MPEG1_KBPS else (8, allowed[-1])
    return min(1.0, max(0.0, (high - kbps - 0.5) / (high - low)))


def m4b_kbps(rate: int) -> tuple[int, ...]:
    """The bitrates an M4B (mono AAC) at `rate` Hz is written at: 48 kbps up to what an AAC frame can
    hold (6144 bits a 1024-sample frame)."""
    return tuple(k for k in ALL_KBPS if 48 <= k and k * 1000 <= 6 * rate)


def allowed_kbps(ext: str, rate: int) -> tuple[int, ...]:
    """The bitrates a file of format `ext` at `rate` Hz can carry; () for formats without a bitrate."""
    if ext == "mp3":
        return mp3_kbps(rate)
    if ext == "m4b":
        return m4b_kbps(rate)
    return ()


def default_kbps(ext: str, rate: int) -> int:
    """DEFAULT_KBPS, or the highest bitrate under it that a `.ext` file at `rate` Hz can carry."""
    allowed = allowed_kbps(ext, rate)
    return DEFAULT_KBPS if not allowed or DEFAULT_KBPS in allowed else max(k for k in allowed if k <= DEFAULT_KBPS)


def check_bitrate(ext: str, rate: int, kbps: int | None, *, where: str = "") -> None:
    """Refuse a bitrate that a `.ext` file at `rate` Hz cannot carry, naming the ones it can."""
    allowed = allowed_kbps(ext, rate)
    if kbps is None or not allowed or kbps in allowed:
        return
    version = {MPEG1_KBPS: " (MPEG-1)", MPEG2_KBPS: " (MPEG-2)", MPEG25_KBPS: " (MPEG-2.5)"}.get(allowed, "") \
        if ext == "mp3" else " (AAC)"
    raise UsageError(f"{where}{kbps} kbps is not a bitrate an {ext.upper()} at {rate} Hz{version} can carry",
                     hint=f"use one of {', '.join(map(str, allowed))} (kbps), or another sample rate")
