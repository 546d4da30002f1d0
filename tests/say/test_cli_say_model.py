"""`higgs say` and `higgs model` through the real CLI, on a tiny random checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf


def _tone(path, rate=44100, channels=2, seconds=2.0):
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.4 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, np.stack([mono] * channels, axis=1) if channels > 1 else mono, rate)
    return path


def test_say_writes_24khz_audio_and_reports_it(cli, tiny_model, tmp_path):
    out = tmp_path / "hello.wav"
    result = cli("--json", "say", "Hello there.", "-o", out, "--model", tiny_model, "--max-seconds", "1.2",
                 "--seed", "7")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    audio, rate = sf.read(out)
    assert rate == 24000
    assert len(audio) == round(data["seconds"] * 24000)
    assert data["frames"] <= 30 and data["random_weights"] is True
    assert "noise" in data["warning"]


def test_same_seed_same_audio_other_seed_other_audio(cli, tiny_model, tmp_path):
    args = ("say", "Same words.", "--model", tiny_model, "--max-seconds", "1")
    assert cli(*args, "-o", tmp_path / "a.flac", "--seed", "1").exit_code == 0
    assert cli(*args, "-o", tmp_path / "b.flac", "--seed", "1").exit_code == 0
    assert cli(*args, "-o", tmp_path / "c.flac", "--seed", "2").exit_code == 0
    a, b, c = (sf.read(tmp_path / f"{n}.flac")[0] for n in "abc")
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_human_output_says_the_model_is_random_once_on_stderr(cli, tiny_model, tmp_path):
    from higgs_cli.engine.request import RANDOM_WEIGHTS_NOTE

    result = cli("say", "Hi.", "-o", tmp_path / "x.wav", "--model", tiny_model, "--max-seconds", "0.5")
    assert result.exit_code == 0
    assert result.stderr.count(RANDOM_WEIGHTS_NOTE) == 1 and "noise" not in result.stdout
    assert "wrote" in result.stdout
    quiet = cli("-q", "say", "Hi.", "-o", tmp_path / "y.wav", "--model", tiny_model, "--max-seconds", "0.5")
    assert quiet.exit_code == 0 and "noise" not in quiet.output


def test_model_from_environment(cli, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("HIGGS_MODEL", str(tiny_model))
    assert cli("say", "Hi.", "-o", tmp_path / "x.wav", "--max-seconds", "0.4").exit_code == 0


def test_dtype_from_environment(cli, tiny_model, tmp_path, monkeypatch):
    """$HIGGS_DTYPE picks the number type; a bad one fails clearly, before any audio is written."""
    monkeypatch.setenv("HIGGS_DTYPE", "fp32")
    assert cli("say", "Hi.", "-o", tmp_path / "x.wav", "--model", tiny_model, "--max-seconds", "0.4").exit_code == 0
    monkeypatch.setenv("HIGGS_DTYPE", "int3")
    bad = cli("say", "Hi.", "-o", tmp_path / "y.wav", "--model", tiny_model, "--max-seconds", "0.4")
    assert bad.exit_code == 2 and "unknown dtype 'int3'" in bad.output and "HIGGS_DTYPE" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "y.wav").exists()


def test_clone_from_a_file_of_any_rate_and_channels(cli, tiny_model, tmp_path):
    ref = _tone(tmp_path / "ref.wav", rate=44100, channels=2)
    out = tmp_path / "clone.wav"
    result = cli("say", "Cloned words.", "-o", out, "--model", tiny_model, "--voice", ref,
                 "--transcript", "A reference tone.", "--max-seconds", "0.8")
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_clone_from_the_library_uses_cached_codes(cli, tiny_model, tmp_path, _isolated_home):
    ref = _tone(tmp_path / "ref.wav", rate=16000, channels=1)
    assert cli("voice", "add", "tone", ref, "--transcript", "A reference tone.").exit_code == 0
    result = cli("say", "Library voice.", "-o", tmp_path / "x.wav", "--model", tiny_model, "--voice", "tone",
                 "--max-seconds", "0.6")
    assert result.exit_code == 0, result.output
    assert list((_isolated_home / "voices" / "tone" / "codes").glob("*.npy"))


@pytest.mark.parametrize("args, code, message", [
    (("say", ""), 2, "empty"),
    (("say", "   "), 2, "empty"),
    (("say", "x" * 6000), 2, "the limit is"),
    (("say", "hi", "--temperature", "3"), 2, "temperature"),
    (("say", "hi", "--top-p", "0"), 2, "top-p"),
    (("say", "hi", "--voice", "nobody"), 2, "no voice named"),
    (("say", "hi", "--voice", "missing.wav"), 2, "no such file"),
    (("say", "hi", "--transcript", "words"), 2, "--voice"),
    (("say", "hi", "--bogus"), 2, "No such option"),
    (("say", "hi", "--device", "cuda"), 2, "CUDA"),
])
def test_bad_say_input_is_a_usage_error_and_writes_nothing(cli, tiny_model, tmp_path, args, code, message):
    out = tmp_path / "never.wav"
    result = cli(*args, "-o", out, "--model", tiny_model)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_voice_file_without_transcript_fails_before_loading(cli, tmp_path):
    ref = _tone(tmp_path / "ref.wav")
    result = cli("say", "hi", "-o", tmp_path / "o.wav", "--voice", ref, "--model", tmp_path / "no-model")
    assert result.exit_code == 2 and "--transcript" in result.output


def test_unwritable_outputs(cli, tiny_model, tmp_path):
    result = cli("say", "hi", "-o", tmp_path / "missing" / "x.wav", "--model", tiny_model)
    assert result.exit_code == 2 and "does not exist" in result.output
    result = cli("say", "hi", "-o", tmp_path / "x.aiff2", "--model", tiny_model)
    assert result.exit_code == 2 and "unsupported" in result.output


def test_missing_models(cli, tmp_path):
    result = cli("say", "hi", "-o", tmp_path / "x.wav", "--model", tmp_path / "nothing-here")
    assert result.exit_code == 1 and "does not exist" in result.output
    result = cli("--json", "say", "hi", "-o", tmp_path / "x.wav", "--model", "someone/uncached-model")
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert "offline" in error["error"] and "higgs model pull" in error["hint"]
    assert not (tmp_path / "x.wav").exists()


def test_failed_generation_leaves_no_output(cli, tiny_model, tmp_path, monkeypatch):
    from higgs_cli.engine.session import ModelSession

    def boom(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ModelSession, "generate", boom)
    out = tmp_path / "x.wav"
    result = cli("say", "hi", "-o", out, "--model", tiny_model)
    assert result.exit_code == 130
    assert list(tmp_path.iterdir()) == []


def test_model_info_and_init_random(cli, tiny_model, tmp_path):
    result = cli("--json", "model", "info", tiny_model)
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["codebook_size"] == 1026 and info["codebooks"] == 8 and info["random_weights"] is True
    assert cli("--json", "model", "info").exit_code == 0
    target = tmp_path / "fresh"
    result = cli("--json", "model", "init-random", target, "--size", "tiny", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert (target / "config.json").is_file() and "noise" in json.loads(result.stdout)["warning"]
    again = cli("model", "init-random", target)
    assert again.exit_code == 2 and "not empty" in again.output
    assert cli("model", "init-random", tmp_path / "x", "--size", "huge").exit_code == 2


def test_model_pull_offline_explains(cli):
    result = cli("model", "pull", "someone/uncached-model")
    assert result.exit_code == 1
    assert "offline" in result.output


@pytest.mark.slow
def test_help_is_fast_and_imports_no_torch():
    import subprocess
    import sys

    code = "import sys; from higgs_cli.cli.app import main\ntry: main(['--help'])\nexcept SystemExit: pass\n" \
           "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "say" in done.stdout and "project" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_the_engine_asks_for_huge_pages_before_torch_loads(preset, expected):
    """torch reads THP_MEM_ALLOC_ENABLE once, at start: the engine package sets it first, unless set."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    code = ("import os, sys, higgs_cli.engine\nassert 'torch' not in sys.modules\n"
            "print(os.environ['THP_MEM_ALLOC_ENABLE'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_streaming_to_a_file_matches_the_plain_render(cli, tiny_model, tmp_path):
    args = ("say", "Streamed words.", "--model", tiny_model, "--max-seconds", "1.5", "--seed", "5")
    assert cli(*args, "-o", tmp_path / "plain.wav").exit_code == 0
    result = cli("--json", *args, "-o", tmp_path / "streamed.wav", "--stream")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["streamed"] is True and data["first_audio_seconds"] is not None
    plain, _ = sf.read(tmp_path / "plain.wav")
    streamed, _ = sf.read(tmp_path / "streamed.wav")
    assert streamed.shape == plain.shape
    assert np.abs(streamed - plain).max() < 2e-3  # 16-bit rounding plus chunked decoding


def test_streaming_wav_to_stdout(tiny_model, tmp_path):
    import io
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "higgs_cli", "-q", "say", "Piped words.", "--stream", "-o", "-",
                           "--model", str(tiny_model), "--max-seconds", "1"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout[:4] == b"RIFF" and done.stdout[8:12] == b"WAVE"
    pcm = np.frombuffer(done.stdout[44:], dtype="<i2")
    assert 0 < len(pcm) <= 24000 and len(pcm) % 960 == 0
    assert sf.info(io.BytesIO(done.stdout)).samplerate == 24000


def test_whole_wav_to_stdout_without_stream(tiny_model, tmp_path):
    """`higgs say "Hi" -o - > hi.wav`: only the audio on stdout (a WAV with its real length), messages on stderr."""
    import io
    import subprocess
    import sys

    args = ["say", "Piped words.", "--model", str(tiny_model), "--max-seconds", "1", "--seed", "3"]
    done = subprocess.run([sys.executable, "-m", "higgs_cli", *args, "-o", "-"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout[:4] == b"RIFF" and int.from_bytes(done.stdout[4:8], "little") == len(done.stdout) - 8
    assert b"streamed" in done.stderr and b"noise" in done.stderr
    piped, rate = sf.read(io.BytesIO(done.stdout))
    assert subprocess.run([sys.executable, "-m", "higgs_cli", *args, "-o", str(tmp_path / "f.wav")],
                          capture_output=True).returncode == 0
    assert rate == 24000 and np.array_equal(piped, sf.read(tmp_path / "f.wav")[0])


def test_unexpected_errors_are_reported_in_json_too(cli, tiny_model, tmp_path, monkeypatch):
    from higgs_cli.engine.session import ModelSession

    def broken(self, *args, **kwargs):
        raise ValueError("something odd")

    monkeypatch.setattr(ModelSession, "generate", broken)
    result = cli("--json", "say", "hi", "-o", tmp_path / "x.wav", "--model", tiny_model)
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert "unexpected ValueError: something odd" in error["error"] and "--debug" in error["hint"]
    assert "Traceback" not in result.output


def test_say_compile_says_the_first_steps_compile(cli, tiny_model, tmp_path, monkeypatch):
    """--compile warns of the pause on first use (the compiling itself is tested in test_engine_parity)."""
    from higgs_cli.engine.session import ModelSession

    load = ModelSession.load.__func__
    monkeypatch.setattr(ModelSession, "load", classmethod(lambda cls, *a, compile=False, **k: load(cls, *a, **k)))
    result = cli("say", "Hello.", "-o", tmp_path / "a.wav", "--model", tiny_model, "--max-seconds", "0.5",
                 "--compile")
    assert result.exit_code == 0, result.output
    assert "compiles on first use" in result.stderr


@pytest.mark.parametrize(("model", "message"), [
    ("/nonexistent", "model folder /nonexistent does not exist"),
    ("not-a-model-id", "'not-a-model-id' is neither a folder nor a Hub repo id"),
])
def test_a_model_that_is_not_there_is_an_error_with_a_hint(cli, tmp_path, model, message):
    """Issue 35.7: `--model /nonexistent` gets the usual error:/hint: shape."""
    result = cli("say", "hi", "-o", tmp_path / "o.wav", "--model", model)
    assert result.exit_code in (1, 2) and f"error: {message}" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
