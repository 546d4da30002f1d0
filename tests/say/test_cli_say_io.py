"""`higgs say`: TEXT from stdin, the RAS flags and their defaults, a summary without None parts,
and `--temperature 0 --ras-window 0` as transformers' greedy generate()."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from say_fixtures import feed_stdin

FAKE_CLI = Path(__file__).parents[1] / "fake_cli.py"


def test_dash_reads_the_text_from_stdin(cli, session, tmp_path, monkeypatch):
    feed_stdin(monkeypatch, "Héllo from a pipe.\n".encode())
    result = cli("say", "-", "-o", tmp_path / "x.wav")
    assert result.exit_code == 0, result.output
    assert session.requests[0].text == "Héllo from a pipe."


@pytest.mark.parametrize("data, message", [(b"", "stdin holds no text"), (b"  \n", "stdin holds no text"),
                                           (b"caf\xe9\n", "not UTF-8")])
def test_empty_or_undecodable_stdin_is_a_usage_error(cli, session, tmp_path, monkeypatch, data, message):
    feed_stdin(monkeypatch, data)
    result = cli("say", "-", "-o", tmp_path / "x.wav")
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    assert session.requests == [] and not (tmp_path / "x.wav").exists()


@pytest.mark.slow
def test_a_pipe_into_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, str(FAKE_CLI), "say", "-", "-o", str(tmp_path / "p.wav")],
                          input=b"Piped words.\n", capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "p.wav").is_file()


@pytest.mark.slow
def test_whole_wav_on_stdout_and_messages_on_stderr(tmp_path):
    import soundfile as sf

    done = subprocess.run([sys.executable, str(FAKE_CLI), "say", "Hi.", "-o", "-"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    audio, rate = sf.read(io.BytesIO(done.stdout))
    assert rate == 24000 and len(audio) > 0
    assert b"streamed" in done.stderr and b"None" not in done.stderr


def test_ras_flags_reach_the_request_and_defaults_are_samplings(cli, session, tmp_path):
    from higgs_cli.engine.request import DEFAULT_MAX_SECONDS, DEFAULT_SEED, FRAME_RATE, Sampling

    assert cli("say", "Hi.", "-o", tmp_path / "a.wav").exit_code == 0
    request = session.requests[-1]
    assert request.sampling == Sampling() and request.seed == DEFAULT_SEED
    assert request.max_frames == round(DEFAULT_MAX_SECONDS * FRAME_RATE)
    assert cli("say", "Hi.", "-o", tmp_path / "b.wav", "--ras-window", "3", "--ras-max-repeat", "5").exit_code == 0
    assert (session.requests[-1].sampling.ras_window, session.requests[-1].sampling.ras_max_repeat) == (3, 5)


@pytest.mark.parametrize("args, flag", [(("--ras-window", "-1"), "--ras-window"), (("--ras-window", "101"),
                                         "--ras-window"), (("--ras-max-repeat", "0"), "--ras-max-repeat"),
                                        (("--seed", "-1"), "--seed"), (("--max-seconds", "0"), "--max-seconds"),
                                        (("--top-k", "0"), "--top-k")])
def test_every_sampling_value_is_checked_against_its_range(cli, session, tmp_path, args, flag):
    result = cli("say", "Hi.", "-o", tmp_path / "x.wav", *args)
    assert result.exit_code == 2 and f"{flag} must be" in result.stderr
    assert session.requests == []


def test_the_summary_never_prints_none():
    from higgs_cli.speech import SayResult

    facts = {"model": "m", "random_weights": False, "seed": 0}
    for result in (SayResult("x.wav", 1.0, 0.0, **facts, frames=25, finished=True),
                   SayResult("x.wav", 1.0, 0.5, **facts, streamed=True, first_audio_seconds=None),
                   SayResult("-", 1.0, 0.5, **facts, streamed=True)):
        assert "None" not in result.summary(30.0)
    assert SayResult("x.wav", 1.0, 0.0, **facts, frames=25).to_dict()["frames_per_second"] is None


def test_cli_greedy_flags_give_transformers_greedy_codes(cli, tiny_model, tmp_path, monkeypatch):
    """`higgs say --temperature 0 --ras-window 0` decodes exactly what transformers' greedy generate() makes."""
    import torch
    from transformers import AutoProcessor, HiggsAudioV2ForConditionalGeneration
    from transformers_refs import hf_generated, hf_inputs

    from higgs_cli.engine.session import ModelSession

    seen = []
    original = ModelSession.generate_frames

    def recording(self, requests, **kwargs):
        made = original(self, requests, **kwargs)
        seen.append((requests[0], made[0][0]))
        return made

    monkeypatch.setattr(ModelSession, "generate_frames", recording)
    monkeypatch.setenv("HIGGS_DTYPE", "fp32")  # exact parity is an fp32 claim (bf16: test_engine_parity)
    result = cli("say", "Hello there, how are you?", "-o", tmp_path / "g.wav", "--model", tiny_model,
                 "--temperature", "0", "--ras-window", "0", "--max-seconds", "1.2", "--seed", "9")
    assert result.exit_code == 0, result.output
    [(request, frames)] = seen
    assert request.sampling.temperature == 0 and request.sampling.ras_window == 0
    processor = AutoProcessor.from_pretrained(tiny_model)
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.float32).eval()
    expected = hf_generated(model, hf_inputs(processor, request, []), request.max_frames + 8)
    assert np.array_equal(frames, expected)


@pytest.mark.parametrize("url", ["gs://b/x.wav", "s3://bucket/take.wav"])
def test_an_output_url_is_refused_as_the_user_wrote_it(cli, session, tmp_path, monkeypatch, url):
    """`-o s3://...` is not a local folder named `s3:`: refused before generating, the URL shown unfolded."""
    monkeypatch.chdir(tmp_path)
    result = cli("say", "Hello.", "-o", url)
    assert result.exit_code == 2 and f"cannot write {url}: this output is a local file" in result.stderr
    assert session.requests == [] and list(tmp_path.iterdir()) == []
