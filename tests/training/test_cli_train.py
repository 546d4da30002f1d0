"""`higgs voice train` end to end on the tiny checkpoint: the adapter and its manifest are stored with
the voice, `voice show` shows them, export/import carry them, and `--resume` finds the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tone, write


@pytest.fixture
def voice_and_data(cli, tmp_path):
    write(tmp_path / "ref.wav", tone(1.5, freq=180.0))
    assert cli("voice", "add", "narrator", tmp_path / "ref.wav", "-t", "A reference line.").exit_code == 0
    data = tmp_path / "data"
    noise = np.random.default_rng(0)
    for i in range(3):
        clip = tone(1.1, freq=200.0 + 40 * i) + noise.normal(0, 0.01, int(1.5 * 24000)).astype(np.float32)
        write(data / f"clip{i}.wav", clip, text=f"Clip number {i}.")
    return data


def test_train_stores_the_adapter_with_the_voice(cli, tiny_model, voice_and_data, tmp_path, _isolated_home,
                                                monkeypatch):
    monkeypatch.setenv("HIGGS_DTYPE", "fp32")  # a CPU with bf16 units packs bf16 weights, where no adapter applies
    args = ("--json", "voice", "train", "narrator", voice_and_data, "--model", tiny_model, "--steps", "2",
            "--lr", "2e-2", "--batch-size", "2", "--rank", "2", "--eval-every", "1", "--checkpoint-every", "1",
            "--validation-fraction", "0.34", "--target", "attention", "--target", "audio_lm_head")
    result = cli(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["voice"] == "narrator" and summary["steps_done"] == 2 and len(summary["adapter"]) == 64
    assert summary["data"]["train_clips"] == 2 and summary["data"]["validation_clips"] == 1
    folder = _isolated_home / "voices" / "narrator" / "adapter"
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                      "training.json"]
    manifest = json.loads((folder / "training.json").read_text())
    assert [s for s, _ in manifest["loss_curve"]] == [1, 2] and manifest["settings"]["rank"] == 2
    assert manifest["data"]["digest"] and manifest["base_model"]["model_id"]
    shown = json.loads(cli("--json", "voice", "show", "narrator").stdout)
    assert shown["adapter"]["digest"] == summary["adapter"] and shown["adapter"]["rank"] == 2
    text = cli("voice", "show", "narrator").stdout
    assert "adapter:" in text and "loss:" in text

    # the voice speaks with its adapter; --no-adapter speaks with the base model
    say = ("say", "Hello there.", "--voice", "narrator", "--model", tiny_model, "--no-server", "--temperature", "0",
           "--max-seconds", "0.6")
    assert cli(*say, "-o", tmp_path / "trained.wav").exit_code == 0
    assert cli(*say, "--no-adapter", "-o", tmp_path / "base.wav").exit_code == 0
    assert (tmp_path / "trained.wav").read_bytes() != (tmp_path / "base.wav").read_bytes()

    # merge writes a checkpoint transformers loads as is
    merged = tmp_path / "merged"
    result = cli("voice", "merge", "narrator", "-o", merged, "--model", tiny_model)
    assert result.exit_code == 0, result.output
    assert (merged / "model.safetensors").is_file() and (merged / "config.json").is_file()
    assert cli("voice", "merge", "narrator", "-o", merged, "--model", tiny_model).exit_code == 2  # exists

    # export and import carry the adapter
    archive = tmp_path / "voices.tar.gz"
    assert cli("voice", "export", archive, "narrator").exit_code == 0
    assert cli("voice", "remove", "narrator", "--yes").exit_code == 0
    assert cli("voice", "import", archive).exit_code == 0
    again = json.loads(cli("--json", "voice", "show", "narrator").stdout)
    assert again["adapter"]["digest"] == summary["adapter"]

    # the run's checkpoints stay for --resume: a finished run resumes to its end at once
    resumed = cli(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["resumed_from"] == 2


def test_training_a_voice_that_is_not_there_says_so(cli, voice_and_data):
    result = cli("voice", "train", "nobody", voice_and_data, "--steps", "1")
    assert result.exit_code == 2 and "nobody" in result.output


def test_bad_settings_are_usage_errors(cli, voice_and_data):
    result = cli("voice", "train", "narrator", voice_and_data, "--target", "nonsense")
    assert result.exit_code == 2 and "unknown LoRA targets nonsense" in result.output
    result = cli("voice", "train", "narrator", voice_and_data, "--lr", "0")
    assert result.exit_code == 2 and "learning_rate" in result.output
