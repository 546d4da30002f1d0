"""Synthesize the example projects' voice references: voice-like tones, not speech.

    python projects/make_voices.py [OUT_ROOT]

writes OUT_ROOT/<project>/voices/<name>.wav (24 kHz mono 16-bit PCM) and
<name>.txt (its transcript) for every voice in VOICES. OUT_ROOT defaults to
the folder holding this script, i.e. the committed files are regenerated in
place; the output is the same bytes on every run (each voice has its seed).

Each clip is a short run of nonsense syllables made by formant-wave synthesis:
a glottal pulse train at the speaker's pitch (declining over each phrase, with
accents, vibrato, jitter and shimmer) excites a damped sinusoid per formant of
the syllable's vowel, scaled by the speaker's vocal-tract factor; consonants are
bursts of shaped noise. The transcript spells the syllables the clip "says".
These are stand-ins so that the examples ship their own references. A real
voice reference is a 3-30 s recording of real speech with its exact transcript.
"""

from __future__ import annotations

import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 24_000
FOF_SECONDS = 0.03  # length of one pulse's formant response
PEAK = 0.5  # about -6 dBFS

# Formant frequencies (Hz) of five vowels for an adult male vocal tract.
VOWELS = {
    "a": (730.0, 1090.0, 2440.0, 3400.0),
    "e": (530.0, 1840.0, 2480.0, 3500.0),
    "i": (270.0, 2290.0, 3010.0, 3700.0),
    "o": (570.0, 840.0, 2410.0, 3300.0),
    "u": (300.0, 870.0, 2240.0, 3300.0),
}
BANDWIDTHS = np.array([80.0, 100.0, 140.0, 220.0])
FORMANT_GAINS = np.array([1.0, 0.55, 0.28, 0.12])  # falling source spectrum

# Consonant letter -> (noise burst seconds, burst gain, bright: high-passed noise).
CONSONANTS = {
    "m": (0.0, 0.0, False), "n": (0.0, 0.0, False), "l": (0.0, 0.0, False), "r": (0.0, 0.0, False),
    "b": (0.012, 0.25, False), "d": (0.012, 0.25, False), "t": (0.02, 0.35, True),
    "k": (0.025, 0.35, True), "s": (0.07, 0.22, True), "h": (0.04, 0.12, False),
}


@dataclass(frozen=True)
class Voice:
    project: str
    name: str
    seed: int
    f0: float  # mean pitch in Hz
    tract: float  # formant scale: 1.0 adult male, ~1.17 adult female, ~1.3 child
    seconds: float
    rate: float = 4.5  # syllables per second
    breath: float = 0.03  # aspiration noise relative to the voiced sound


VOICES = (
    Voice("podcast", "maya", seed=11, f0=205.0, tract=1.17, seconds=3.0),
    Voice("podcast", "theo", seed=12, f0=112.0, tract=1.0, seconds=3.2, rate=4.0),
    Voice("audiobook", "narrator", seed=21, f0=98.0, tract=0.97, seconds=3.5, rate=3.6, breath=0.02),
    Voice("audiobook", "wren", seed=22, f0=265.0, tract=1.28, seconds=2.4, rate=5.2, breath=0.05),
    Voice("jingle", "juno", seed=31, f0=180.0, tract=1.12, seconds=3.0, rate=3.4),
)


@dataclass(frozen=True)
class Syllable:
    start: float  # seconds
    length: float
    consonant: str
    vowel: str
    pitch: float  # relative to the voice's f0


def plan(voice: Voice, rng: np.random.Generator) -> tuple[list[Syllable], str]:
    """Syllables grouped in words and phrases, and the transcript that spells them."""
    syllables: list[Syllable] = []
    phrases: list[list[str]] = [[]]
    t, end = 0.12, voice.seconds - 0.15
    mean = 1.0 / voice.rate
    in_phrase = 0
    while True:
        count = int(rng.integers(1, 4))
        lengths = rng.uniform(0.75, 1.3, count) * mean
        if t + lengths.sum() > end:
            break
        word = ""
        for length in lengths:
            consonant = str(rng.choice(list(CONSONANTS)))
            vowel = str(rng.choice(list(VOWELS)))
            declination = 1.08 - 0.16 * min(in_phrase / 8.0, 1.0)
            pitch = declination * float(np.exp(rng.normal(0.0, 0.05)))
            syllables.append(Syllable(t, float(length), consonant, vowel, pitch))
            word += consonant + vowel
            t += float(length)
            in_phrase += 1
        phrases[-1].append(word)
        if len(phrases[-1]) >= 3 and rng.random() < 0.5:  # a phrase ends: a short pause
            phrases.append([])
            in_phrase = 0
            t += float(rng.uniform(0.2, 0.35))
        else:
            t += float(rng.uniform(0.02, 0.06))
    text = ", ".join(" ".join(words) for words in phrases if words)
    return syllables, text[:1].upper() + text[1:] + "."


def synthesize(voice: Voice) -> tuple[np.ndarray, str]:
    """The clip as int16 samples, and its transcript."""
    rng = np.random.default_rng(voice.seed)
    syllables, transcript = plan(voice, rng)
    n = int(round(voice.seconds * SR))
    envelope = np.zeros(n)
    pitch = np.full(n, np.nan)
    formants = np.full((n, 4), np.nan)
    noise = np.zeros(n)
    for syl in syllables:
        burst, gain, bright = CONSONANTS[syl.consonant]
        a, b = int(syl.start * SR), int((syl.start + syl.length) * SR)
        voiced = a + int(burst * SR)
        if burst:  # a consonant: a short burst of decaying noise before the vowel
            hiss = rng.normal(0.0, 1.0, voiced - a + 1)
            hiss = np.diff(hiss) if bright else hiss[1:] * 0.5 + hiss[:-1] * 0.5
            noise[a:voiced] += gain * hiss * np.linspace(1.0, 0.3, voiced - a)
        x = np.linspace(0.0, 1.0, b - voiced, endpoint=False)
        envelope[voiced:b] = np.maximum(envelope[voiced:b], np.sin(np.pi * x ** 0.75) ** 0.8)
        pitch[a:b] = syl.pitch
        formants[a:b] = np.array(VOWELS[syl.vowel]) * voice.tract
    # Hold the last values through the gaps, then glide between syllables.
    for track in (pitch[:, None], formants):
        known = ~np.isnan(track[:, 0])
        idx = np.where(known, np.arange(n), 0)
        np.maximum.accumulate(idx, out=idx)
        track[:] = track[idx]
        track[:np.argmax(known)] = track[np.argmax(known)]
    glide = np.hanning(int(0.04 * SR))
    glide /= glide.sum()
    pitch = np.convolve(np.pad(pitch, len(glide), mode="edge"), glide, "same")[len(glide):-len(glide)]
    formants = np.stack([np.convolve(np.pad(f, len(glide), mode="edge"), glide, "same")[len(glide):-len(glide)]
                         for f in formants.T], axis=1)

    t = np.arange(n) / SR
    f0 = voice.f0 * pitch * (1.0 + 0.006 * np.sin(2 * np.pi * 5.2 * t))  # a little vibrato
    phase = np.cumsum(f0 / SR)
    pulses = np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1
    pulses = pulses[envelope[pulses] > 0.02]
    pulses = np.clip(pulses + rng.integers(-2, 3, len(pulses)), 0, n - 1)  # jitter
    amplitude = envelope[pulses] * rng.uniform(0.9, 1.1, len(pulses))  # shimmer

    # One damped sinusoid per formant, started at each pulse and added up (formant-wave synthesis).
    tau = np.arange(int(FOF_SECONDS * SR)) / SR
    freq = formants[pulses][:, :, None]
    decay = np.exp(-np.pi * BANDWIDTHS[None, :, None] * tau)
    onset = 0.5 - 0.5 * np.cos(np.pi * np.minimum(tau / 0.002, 1.0))
    responses = (FORMANT_GAINS[None, :, None] * decay * np.sin(2 * np.pi * freq * tau)).sum(axis=1) * onset
    where = (pulses[:, None] + np.arange(len(tau))).ravel()
    voiced_sound = np.bincount(where, weights=(responses * amplitude[:, None]).ravel(), minlength=n + len(tau))[:n]
    voiced_sound /= np.abs(voiced_sound).max()

    breath = np.convolve(rng.normal(0.0, 1.0, n), np.ones(3) / 3, "same") * envelope * voice.breath
    signal = voiced_sound + breath + noise * 0.5
    fade = int(0.01 * SR)
    ramp = np.linspace(0.0, 1.0, fade)
    signal[:fade] *= ramp
    signal[-fade:] *= ramp[::-1]
    signal *= PEAK / np.abs(signal).max()
    return np.round(signal * 32767).astype("<i2"), transcript


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes(samples.tobytes())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print(__doc__.strip().splitlines()[0] + "\nusage: python make_voices.py [OUT_ROOT]")
        return 0 if args and args[0] in ("-h", "--help") else 2
    root = Path(args[0]) if args else Path(__file__).resolve().parent
    for voice in VOICES:
        folder = root / voice.project / "voices"
        folder.mkdir(parents=True, exist_ok=True)
        samples, transcript = synthesize(voice)
        write_wav(folder / f"{voice.name}.wav", samples)
        (folder / f"{voice.name}.txt").write_text(transcript + "\n", encoding="utf-8")
        print(f"{folder / voice.name}.wav  {len(samples) / SR:.1f} s  {transcript}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
