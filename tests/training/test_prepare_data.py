"""`prepare_data`: clips kept and dropped with reasons, codes cached by content, a deterministic split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import bursts, tone, write

from higgs_cli.engine.request import FRAME_RATE, NUM_CODEBOOKS
from higgs_cli.errors import UsageError
from higgs_cli.training.data import Example, prepare_data


def test_a_folder_of_clips_becomes_examples_with_codes(clips_dir, session, tmp_path):
    data = prepare_data(clips_dir, session, cache_dir=tmp_path / "cache")
    examples = data.train + data.validation
    assert len(examples) == 4 and len(data.validation) == 1 and data.report.kept == 4
    assert all(isinstance(e, Example) for e in examples)
    first = next(e for e in examples if e.source == "clip0.wav")
    assert first.text == "Clip number 0. Done."  # whitespace collapsed, ends stripped: the voices' rule
    assert first.codes.shape == (first.frames, NUM_CODEBOOKS) and first.codes.dtype.kind == "i"
    assert 2.0 <= first.seconds <= 2.2  # edges trimmed to the tone, a little of the quiet kept
    assert abs(first.frames - first.seconds * FRAME_RATE) <= 1
    assert data.report.encoded == 4 and data.report.cached == 0 and data.report.dropped == []
    assert data.report.warnings and "min" in data.report.warnings[0]  # seconds of audio, not minutes
    assert len(data.digest) == 64


def test_later_runs_never_run_the_codec_again(clips_dir, session, tmp_path):
    first = prepare_data(clips_dir, session, cache_dir=tmp_path / "cache")
    calls = session.encode_calls
    again = prepare_data(clips_dir, session, cache_dir=tmp_path / "cache")
    assert session.encode_calls == calls and again.report.encoded == 0 and again.report.cached == 4
    assert again.digest == first.digest
    for a, b in zip(first.train, again.train, strict=True):
        assert np.array_equal(a.codes, b.codes)


def test_a_damaged_cache_file_or_another_codec_encodes_again(clips_dir, session, tmp_path):
    cache = tmp_path / "cache"
    prepare_data(clips_dir, session, cache_dir=cache)
    damaged = sorted(cache.glob("*.npy"))[0]
    damaged.write_bytes(b"not numpy")
    assert prepare_data(clips_dir, session, cache_dir=cache).report.encoded == 1
    session.codec_id = "another-codec"
    assert prepare_data(clips_dir, session, cache_dir=cache).report.encoded == 4


def test_the_split_follows_the_seed(tmp_path, session):
    folder = tmp_path / "data"
    for i in range(10):
        write(folder / f"c{i:02}.wav", tone(1.5, freq=150 + 20 * i), text=f"line {i}")
    cache = tmp_path / "cache"

    def held(seed, fraction=0.2):
        data = prepare_data(folder, session, cache_dir=cache, seed=seed, validation_fraction=fraction)
        assert len(data.train) + len(data.validation) == 10
        return [e.source for e in data.validation], data.digest

    assert held(0) == held(0)
    assert len(held(0)[0]) == 2
    assert {tuple(held(seed)[0]) for seed in range(5)} != {tuple(held(0)[0])}  # the seed chooses
    assert held(0)[1] != held(1)[1] or held(0)[0] == held(1)[0]  # the split is part of the digest
    none, _ = held(0, 0.0)
    assert none == []


def test_what_would_poison_training_is_dropped_with_its_reason(tmp_path, session):
    folder = tmp_path / "data"
    write(folder / "good.wav", tone(2.0), text="A good clip.")
    write(folder / "short.wav", tone(0.5), text="Too short.")
    write(folder / "long.wav", tone(31.0, lead=0, tail=0), text="Too long.")
    write(folder / "clipped.wav", np.clip(tone(2.0, amp=3.0), -1, 1), text="Too loud.")
    write(folder / "quiet.wav", tone(2.0, amp=0.0005), text="Too quiet.")
    write(folder / "silent.wav", np.zeros(48_000, dtype=np.float32), text="Nothing.")
    write(folder / "empty.wav", tone(2.0), text="  \n ")
    write(folder / "untranscribed.wav", tone(2.0))
    (folder / "broken.wav").write_bytes(b"RIFF....not audio at all")
    (folder / "broken.txt").write_text("Broken.")
    (folder / "orphan.txt").write_text("No audio.")
    (folder / "latin1.wav").write_bytes((folder / "good.wav").read_bytes())
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    data = prepare_data(folder, session, cache_dir=tmp_path / "cache")
    assert [e.source for e in data.train + data.validation] == ["good.wav"]
    reasons = dict(data.report.table())
    assert "shorter than 1 s" in reasons["short.wav"]
    assert "longer than 30 s" in reasons["long.wav"]
    assert reasons["clipped.wav"].startswith("clipped")
    assert reasons["quiet.wav"].startswith("near-silent")
    assert reasons["silent.wav"] == "silent"
    assert "empty" in reasons["empty.wav"]
    assert "--asr-model" in reasons["untranscribed.wav"]
    assert "not a readable audio file" in reasons["broken.wav"]
    assert "no audio file" in reasons["orphan.txt"]
    assert "UTF-8" in reasons["latin1.wav"]
    assert len(data.report.dropped) == 10
    json.dumps(data.report.to_dict())  # plain data


@pytest.mark.parametrize("make, message", [
    (lambda folder: folder.mkdir(), "no audio files"),
    (lambda folder: write(folder / "a.wav", tone(2.0)), "no transcript"),
    (lambda folder: write(folder / "a.wav", tone(0.3), text="short"), "nothing usable"),
])
def test_data_with_nothing_to_train_on_is_a_usage_error(tmp_path, session, make, message):
    folder = tmp_path / "data"
    make(folder)
    with pytest.raises(UsageError, match=message) as error:
        prepare_data(folder, session, cache_dir=tmp_path / "cache")
    assert error.value.hint
    assert session.encode_calls == 0


def test_a_missing_path_is_a_usage_error(tmp_path, session):
    with pytest.raises(UsageError, match="no such file or folder"):
        prepare_data(tmp_path / "nowhere", session, cache_dir=tmp_path / "cache")


def test_a_folder_mixing_sample_rates_and_channels_is_resampled(tmp_path, session):
    folder = tmp_path / "data"
    write(folder / "a16k.wav", tone(2.0, rate=16_000), rate=16_000, text="sixteen")
    stereo = np.stack([tone(2.0, rate=44_100)] * 2, axis=1)
    write(folder / "b44k.wav", stereo, rate=44_100, text="forty four")
    write(folder / "c24k.flac", tone(2.0), text="twenty four")
    data = prepare_data(folder, session, cache_dir=tmp_path / "cache", validation_fraction=0)
    assert len(data.train) == 3
    for example in data.train:
        assert 2.0 <= example.seconds <= 2.2 and abs(example.frames - example.seconds * FRAME_RATE) <= 1


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_a_sheet_names_audio_relative_to_itself(tmp_path, session, suffix):
    write(tmp_path / "audio" / "one.wav", tone(2.0))
    write(tmp_path / "audio" / "two.wav", tone(2.5, freq=300))
    rows = [("audio/one.wav", "First, line."), ("audio/two.wav", "Second line."), ("audio/gone.wav", "Lost.")]
    sheet = tmp_path / f"lines{suffix}"
    if suffix == ".jsonl":
        sheet.write_text("\n".join(json.dumps({"audio": a, "Text": t}) for a, t in rows))
    else:
        sep = "," if suffix == ".csv" else "\t"
        sheet.write_text("audio" + sep + "text\n" + "\n".join(f'{a}{sep}"{t}"' for a, t in rows))
    data = prepare_data(sheet, session, cache_dir=tmp_path / "cache", validation_fraction=0)
    assert [e.text for e in data.train] == ["First, line.", "Second line."]
    assert data.train[0].source.endswith("audio/one.wav")
    [(where, reason)] = data.report.table()
    assert where == f"lines{suffix}:4" if suffix != ".jsonl" else where == "lines.jsonl:3"
    assert "no such audio file" in reason


def test_a_sheet_with_the_wrong_columns_says_which_it_needs(tmp_path, session):
    sheet = tmp_path / "lines.csv"
    sheet.write_text("file_name,words\na.wav,Hello\n")
    with pytest.raises(UsageError, match="needs an audio column .* and a text column .*its columns are "
                                         "file_name, words"):
        prepare_data(sheet, session, cache_dir=tmp_path / "cache")


def test_a_long_recording_is_cut_at_pauses_and_transcribed(tmp_path, session):
    heard = []

    def recognizer(audio, rate):
        heard.append(len(audio) / rate)
        return f"  words of cut {len(heard)} "

    recording = write(tmp_path / "book.wav", bursts(10))  # 10 x 2 s, 0.6 s apart: 26 s
    data = prepare_data(recording, session, cache_dir=tmp_path / "cache", recognizer=recognizer,
                        validation_fraction=0)
    assert [e.text for e in data.train] == ["words of cut 1", "words of cut 2"]
    # tones at 0.3-2.3 s, 2.9-4.9 s, ...: cut after the fifth (10 s reached), a little of each pause kept
    spans = [[float(x) for x in e.source.removeprefix("book.wav [").removesuffix(" s]").split("-")]
             for e in data.train]
    assert np.allclose(spans, [[0.2, 12.8], [13.2, 25.8]], atol=0.1), spans
    assert heard == [e.seconds for e in data.train]


def test_untranscribed_recordings_without_recognition_say_what_to_install(tmp_path, session):
    recording = write(tmp_path / "book.wav", bursts(3))
    with pytest.raises(UsageError, match="no transcript") as error:
        prepare_data(recording, session, cache_dir=tmp_path / "cache")
    assert "whisper" in error.value.hint.lower() and "--asr-model" in error.value.hint


def test_recognition_drops_a_transcript_that_does_not_match(clips_dir, session, tmp_path):
    def recognizer(audio, rate):
        return "Clip number 0. Done." if len(audio) < 2.2 * rate else "something else entirely"

    data = prepare_data(clips_dir, session, cache_dir=tmp_path / "cache", recognizer=recognizer)
    assert [e.source for e in data.train + data.validation] == ["clip0.wav"]
    assert all("does not match" in reason for _, reason in data.report.table())


def test_the_validation_fraction_is_checked(clips_dir, session, tmp_path):
    with pytest.raises(UsageError, match="validation fraction"):
        prepare_data(clips_dir, session, cache_dir=tmp_path / "cache", validation_fraction=1.0)


def test_clips_are_encoded_a_chunk_at_a_time_and_progress_counts_recordings(tmp_path, session, monkeypatch):
    from higgs_cli.training.data import encoding

    folder = tmp_path / "data"
    for i in range(5):
        write(folder / f"c{i}.wav", tone(1.5, freq=150 + 20 * i), text=f"line {i}")
    write(folder / "twin.wav", tone(1.5, freq=150), text="the same audio as c0")
    monkeypatch.setattr(encoding, "ENCODE_CHUNK", 2)
    sizes = []
    session.encode_many = lambda clips: sizes.append(len(clips)) or [session.encode_audio(c) for c in clips]
    seen = []
    data = prepare_data(folder, session, cache_dir=tmp_path / "cache", progress=lambda *a: seen.append(a))
    assert sizes == [2, 2, 1] and data.report.encoded == 5 and data.report.cached == 1
    assert seen == [(n, 6) for n in range(1, 7)]
    twin = {e.source: e.codes for e in data.train + data.validation}
    assert np.array_equal(twin["c0.wav"], twin["twin.wav"])


def test_a_recording_over_the_cap_is_a_dropped_line_not_a_read(tmp_path, session, monkeypatch):
    from higgs_cli.training.data import clips

    monkeypatch.setattr(clips, "MAX_RECORDING_SECONDS", 5.0)
    folder = tmp_path / "data"
    write(folder / "book.wav", bursts(3))
    write(folder / "fine.wav", tone(2.0), text="Fine.")
    data = prepare_data(folder, session, cache_dir=tmp_path / "cache", recognizer=lambda audio, rate: "fine")
    assert [e.source for e in data.train] == ["fine.wav"]
    [(where, reason)] = data.report.table()
    assert where == "book.wav" and "at most 5 s" in reason


def test_what_recognition_heard_is_cached_by_content_and_identity(tmp_path):
    from higgs_cli.training.data.recognition import HeardCache

    calls = []

    def recognizer(audio, rate):
        calls.append(len(audio))
        return f"heard {len(calls)}"

    clip = tone(1.0)
    first = HeardCache(recognizer, tmp_path / "heard", "whisper-a")
    assert first(clip, 24_000) == first(clip, 24_000) == "heard 1"
    assert HeardCache(recognizer, tmp_path / "heard", "whisper-b")(clip, 24_000) == "heard 2"
    assert first(tone(1.1), 24_000) == "heard 3" and len(calls) == 3


def test_a_recording_is_cut_a_window_at_a_time_as_if_read_whole(tmp_path, session, monkeypatch):
    from higgs_cli.training.data import clips

    recording = write(tmp_path / "book.wav", bursts(12))  # 31.2 s: cuts at 12.4 s and 24.8 s read whole
    heard = lambda audio, rate: "words"  # noqa: E731

    def spans(window):
        monkeypatch.setattr(clips, "WINDOW_SECONDS", window)
        data = prepare_data(recording, session, cache_dir=tmp_path / "cache", recognizer=heard,
                            validation_fraction=0)
        return [[float(x) for x in e.source.removeprefix("book.wav [").removesuffix(" s]").split("-")]
                for e in data.train]

    whole = spans(3600.0)
    assert np.allclose(whole, [[0.2, 12.85], [13.15, 25.85], [26.15, 31.05]], atol=0.05), whole
    # the first window ends inside the second cut: carried over, grown; silence is found on a frame
    # grid that starts with the window, so edges may move by a hop (21 ms)
    assert np.allclose(spans(21.0), whole, atol=0.025)
