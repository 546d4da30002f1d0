"""Random-init checkpoints: the real layout, the real config values, loadable by plain transformers."""

from __future__ import annotations

import json
import shutil

import pytest

from higgs_cli.engine import checkpoint
from higgs_cli.errors import ModelError, UsageError


def test_layout_and_config_values(tiny_model):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "processor_config.json", "chat_template.jinja", "audio_tokenizer/config.json",
                 "audio_tokenizer/model.safetensors", "README.md"):
        assert (tiny_model / name).is_file(), name
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["codebook_size"] == 1026
    assert config["rope_parameters"]["factor"] == 32.0
    assert config["rope_parameters"]["low_freq_factor"] == 1.0
    assert config["rope_parameters"]["high_freq_factor"] == 4.0
    assert config["rope_parameters"]["original_max_position_embeddings"] == 8192
    assert config["higgs_random_init"] is True


def test_plain_transformers_loads_it(tiny_model):
    from transformers import (
        AutoProcessor,
        AutoTokenizer,
        HiggsAudioV2ForConditionalGeneration,
        HiggsAudioV2TokenizerModel,
    )

    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(tiny_model)
    assert model.config.codebook_size == 1026
    codec = HiggsAudioV2TokenizerModel.from_pretrained(tiny_model / "audio_tokenizer")
    assert codec.config.num_quantizers == 8
    assert codec.config.frame_rate == 25
    assert codec.config.hop_length == 960
    processor = AutoProcessor.from_pretrained(tiny_model)
    assert processor.audio_token_id == 128016 and processor.audio_delay_token_id == 128014
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    expected = {"<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|start_header_id|>": 128006,
                "<|end_header_id|>": 128007, "<|eot_id|>": 128009, "<|audio_bos|>": 128011,
                "<|audio_eos|>": 128012, "<|audio_out_bos|>": 128013, "<|reserved_special_token_6|>": 128014,
                "<|AUDIO|>": 128015, "<|AUDIO_OUT|>": 128016, "<|scene_desc_start|>": 128018,
                "<|scene_desc_end|>": 128019, "<SE>": 128022, "<SE_s>": 128024, "<SE_e>": 128027 - 1}
    for token, token_id in expected.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    assert len(tokenizer) == 128256


def test_chat_template_renders_the_reference_format(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text = lambda s: [{"type": "text", "text": s}]  # noqa: E731
    messages = [
        {"role": "system", "content": text(" Generate audio following instruction. ")},
        {"role": "scene", "content": text("Audio is recorded from a quiet room.") + text("SPEAKER0: feminine")},
        {"role": "user", "content": text("Reference words.")},
        {"role": "assistant", "content": [{"type": "audio", "url": "ref.wav"}]},
        {"role": "user", "content": text("New words. ")},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nGenerate audio following instruction.\n\n"
        "<|scene_desc_start|>\nAudio is recorded from a quiet room.\n\nSPEAKER0: feminine\n<|scene_desc_end|>"
        "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nReference words.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n<|audio_out_bos|><|AUDIO_OUT|><|audio_eos|><|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nNew words.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n<|audio_out_bos|>")
    with pytest.raises(Exception, match="system message is required"):
        tokenizer.apply_chat_template(messages[2:], tokenize=False)


def test_init_random_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        checkpoint.init_random(tmp_path, size="tiny")
    assert (tmp_path / "keep.txt").read_text() == "mine"
    with pytest.raises(UsageError, match="unknown size"):
        checkpoint.init_random(tmp_path / "new", size="huge")


def _copy(tiny_model, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(tiny_model, target)
    return target


def test_incomplete_checkpoints_get_clear_errors(tiny_model, tmp_path):
    from higgs_cli.engine.session import ModelSession

    broken = _copy(tiny_model, tmp_path)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="missing model.safetensors"):
        ModelSession.load(str(broken), device="cpu")

    truncated = _copy(tiny_model, tmp_path / "t")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="could not load"):
        ModelSession.load(str(truncated), device="cpu")

    bad_config = _copy(tiny_model, tmp_path / "c")
    (bad_config / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelSession.load(str(bad_config), device="cpu")

    wrong_codebooks = _copy(tiny_model, tmp_path / "w")
    config = json.loads((wrong_codebooks / "config.json").read_text())
    config["codebook_size"] = 1024
    (wrong_codebooks / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError):
        ModelSession.load(str(wrong_codebooks), device="cpu")


def test_a_copied_checkpoint_uses_its_own_audio_tokenizer(tiny_model, tmp_path):
    moved = _copy(tiny_model, tmp_path)
    assert checkpoint.locate(str(moved)).audio_tokenizer_dir == moved / "audio_tokenizer"
    (moved / "stray.safetensors").write_bytes(b"")
    (moved / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="missing model.safetensors"):
        checkpoint.locate(str(moved))


def test_audio_tokenizer_named_by_the_processor(tiny_model, tmp_path):
    moved = _copy(tiny_model, tmp_path)
    shutil.move(moved / "audio_tokenizer", tmp_path / "codec")
    processor = json.loads((moved / "processor_config.json").read_text())
    processor["audio_tokenizer"]["audio_tokenizer_name_or_path"] = "../codec"
    (moved / "processor_config.json").write_text(json.dumps(processor))
    assert checkpoint.locate(str(moved)).audio_tokenizer_dir.resolve() == (tmp_path / "codec").resolve()
    shutil.move(tmp_path / "codec", moved / "audio_tokenizer")
    processor = json.loads((moved / "processor_config.json").read_text())
    processor["audio_tokenizer"]["audio_tokenizer_name_or_path"] = str(tmp_path / "nowhere")
    (moved / "processor_config.json").write_text(json.dumps(processor))
    assert checkpoint.locate(str(moved)).audio_tokenizer_dir == moved / "audio_tokenizer"


def test_offline_hub_ids_say_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as error:
        checkpoint.locate("someone/not-cached-model")
    assert "offline" in error.value.message
    assert "higgs model pull" in error.value.hint
    with pytest.raises(ModelError, match="does not exist"):
        checkpoint.locate("./no/such/folder")
