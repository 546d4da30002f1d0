"""`prepare_data`: DATA (a folder, a sheet or recordings) into encoded, checked, split training examples."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from higgs_cli.engine.request import SAMPLE_RATE
from higgs_cli.errors import AudioError, UsageError
from higgs_cli.training.data import clips as cutting
from higgs_cli.training.data.clips import Clip
from higgs_cli.training.data.encoding import CodesEncoder
from higgs_cli.training.data.examples import Example, PreparedData, digest, validation_indexes
from higgs_cli.training.data.recognition import HeardCache, LazyRecognizer, Recognizer, mismatch, no_recognizer
from higgs_cli.training.data.report import PrepareReport
from higgs_cli.training.data.sources import Item, collect, training_text

GOOD_MINUTES = "10 minutes to an hour of clean speech of one speaker"  # what the field reports works
MAX_REASONS_SHOWN = 5


def prepare_data(source: str | os.PathLike, session, *, cache_dir: Path, validation_fraction: float = 0.1,
                 seed: int = 0, min_minutes_warning: float = 5.0,
                 recognizer: Recognizer | None = None,
                 progress: Callable[[int, int], None] | None = None) -> PreparedData:
    """Read, cut, check and encode the clips of `source`, and hold out a validation split.

    `session` (an `engine.api.Session`; its `codec_id` keys the codes cache under `cache_dir`) encodes
    only clips whose codes are not cached. `recognizer` ((audio, rate) -> text, e.g. a
    `LazyRecognizer`) transcribes untranscribed recordings and drops clips whose transcript it does not
    hear; without one, untranscribed recordings are dropped, or a UsageError when nothing else is there.
    Fewer than `min_minutes_warning` minutes kept: a warning in the report; nothing kept: a UsageError.
    `progress(done, total)` after each recording (file or sheet row).
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise UsageError(f"the validation fraction must be at least 0 and below 1, not {validation_fraction:g}")
    if isinstance(recognizer, LazyRecognizer):  # a checkpoint that is not there is said before any file is read
        recognizer = HeardCache(recognizer, Path(cache_dir) / "heard", recognizer.identity)
    inputs = collect(source)
    report = PrepareReport(dropped=list(inputs.dropped))
    untranscribed = [item for item in inputs.items if item.text is None]
    if untranscribed and recognizer is None and len(untranscribed) == len(inputs.items):
        raise no_recognizer(len(untranscribed))
    encoder = CodesEncoder(session, Path(cache_dir))
    kept: list[tuple[str, float, str]] = []  # (text, seconds, source): the audio is the encoder's alone
    for done, item in enumerate(inputs.items, start=1):
        if item.text is None and recognizer is None:
            report.drop(item.where, f"no transcript (no {item.audio.with_suffix('.txt').name}), and no speech "
                                    "recognition (--asr-model) to transcribe it")
        else:
            for clip in _clips_of(item, recognizer, report):
                encoder.add(clip.audio)
                kept.append((clip.text, clip.seconds, clip.source))
        if progress is not None:
            progress(done, len(inputs.items))
    if not kept:
        raise _nothing_usable(source, report)
    codes = encoder.finish()
    report.encoded, report.cached = encoder.encoded, len(kept) - encoder.encoded
    examples = [Example(text, found.T.copy(), seconds, where)
                for (text, seconds, where), found in zip(kept, codes, strict=True)]
    held = validation_indexes(len(examples), validation_fraction, seed)
    train = [example for index, example in enumerate(examples) if index not in held]
    validation = [example for index, example in enumerate(examples) if index in held]
    report.kept, report.train, report.validation = len(examples), len(train), len(validation)
    report.seconds = sum(example.seconds for example in examples)
    if report.minutes < min_minutes_warning:
        report.warnings.append(f"only {report.minutes:.1f} min of audio was kept: under {min_minutes_warning:g} "
                               f"min a voice learns little (the field reports {GOOD_MINUTES} works)")
    if not validation:
        report.warnings.append("no validation clips (a single clip, or a validation fraction of 0): training "
                               "cannot measure validation loss or stop early")
    return PreparedData(train, validation, report, digest(train, validation))


def _clips_of(item: Item, recognizer: Recognizer | None, report: PrepareReport) -> Iterator[Clip]:
    """The clips of one recording, one at a time (the dropped ones in `report`): a transcribed file is
    one clip, trimmed; an untranscribed one is cut at pauses, a window at a time, and each cut
    transcribed."""
    if item.text is not None:
        try:
            audio = cutting.trim(cutting.load(item.audio))
        except (AudioError, UsageError) as error:
            report.drop(item.where, error.message)  # says what is wrong: unreadable, empty, too long
            return
        reason = cutting.problem(audio)
        if reason is None and recognizer is not None:
            reason = mismatch(item.text, recognizer(audio, SAMPLE_RATE))
        if reason is None:
            yield Clip(audio, item.text, item.where)
        else:
            report.drop(item.where, reason)
        return
    assert recognizer is not None
    pieces, any_cut = cutting.recording_cuts(item.audio), False
    while True:
        try:  # only the reading: what the recognizer raises is not this file's fault
            piece, start, end = next(pieces)
        except StopIteration:
            break
        except (AudioError, UsageError) as error:
            kept = " (its cuts before that are kept)" if any_cut else ""
            report.drop(item.where, error.message + kept)
            return
        any_cut = True
        where = cutting.span_name(item.where, start, end)
        reason = cutting.problem(piece)
        if reason is None:
            heard = recognizer(piece, SAMPLE_RATE)  # outside the try: its errors are not "no words"
            try:
                text = training_text(heard)
            except UsageError:
                reason = "speech recognition heard no words"
            else:
                yield Clip(piece, text, where)
                continue
        report.drop(where, reason)
    if not any_cut:
        report.drop(item.where, "silent")


def _nothing_usable(source: str | os.PathLike, report: PrepareReport) -> UsageError:
    counts: dict[str, int] = {}
    for item in report.dropped:
        key = item.reason.split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    reasons = sorted(counts.items(), key=lambda pair: -pair[1])[:MAX_REASONS_SHOWN]
    shown = "; ".join(f"{reason} ({count})" for reason, count in reasons)
    return UsageError(f"{source}: nothing usable to train on: all {len(report.dropped)} clip(s) were dropped "
                      f"({shown})", hint="clips must be 1-30 s of clean speech with a matching transcript; "
                                         "`--json` lists every dropped clip and why")
