"""`prepare_data` with a real audio tokenizer (the tiny random-init checkpoint's): codes as the trainer
reads them, cached so that a second run never runs the codec."""

from __future__ import annotations

import numpy as np
from conftest import tone, write

from higgs_cli.engine.request import FRAME_RATE
from higgs_cli.training.data import clips as cutting
from higgs_cli.training.data import prepare_data


def test_the_real_codec_encodes_each_clip_once(tiny_session, tmp_path):
    folder = tmp_path / "data"
    write(folder / "a.wav", tone(1.2), text="First clip.")
    write(folder / "b.wav", tone(1.4, freq=330), text="Second clip.")
    cache = tmp_path / "cache"
    data = prepare_data(folder, tiny_session, cache_dir=cache, validation_fraction=0.5)
    assert data.report.encoded == 2 and len(data.train) == len(data.validation) == 1
    for example in data.train + data.validation:
        books = tiny_session.codec.num_codebooks
        assert example.codes.shape == (example.frames, books)
        assert abs(example.frames - example.seconds * FRAME_RATE) <= 1
    # the codes are the trimmed clip's as encode_audio gives them, transposed: undelayed, nothing added
    [first] = [e for e in data.train + data.validation if e.source == "a.wav"]
    clip = cutting.trim(cutting.load(folder / "a.wav"))
    assert np.array_equal(first.codes, tiny_session.encode_audio(clip).T)
    again = prepare_data(folder, tiny_session, cache_dir=cache, validation_fraction=0.5)
    assert again.report.encoded == 0 and again.digest == data.digest
    assert all(np.array_equal(a.codes, b.codes) for a, b in zip(data.train, again.train, strict=True))
