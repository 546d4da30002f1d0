"""Random checkpoints whose end-of-stream logit is pushed down (lines never end) or up (lines end at once).

They start from a tiny random-init checkpoint (`higgs model init-random`) and
edit its saved safetensors. The audio head has no bias, so the push needs a
hidden feature of known sign: every text and audio embedding gets a large
constant in dimension 0, which survives the (small, random) layers and the
final RMSNorm as a positive value; the head's rows for the stream-EOS code
of each codebook then read only that dimension, with the sign and size of
the bias. Every other row is left as it was: the audio stays random noise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

EMBED_OFFSET = 8.0  # dimension 0 of every embedding: far above the random init (std 0.02)
CODEBOOK_SIZE = 1026  # 1024 codes + stream BOS + stream EOS
STREAM_EOS = 1025


def biased_eos_model(tiny_model: Path, target: Path, bias: float, *, codebooks: tuple[int, ...] | None = None
                     ) -> Path:
    """A copy of `tiny_model` at `target` whose stream-EOS logit is about `bias` in `codebooks`
    (all of them when None) and about -|bias| in the others. Negative: the model never ends a
    line. Positive in the last codebook only: every line ends as soon as that codebook is free
    (it starts 7 frames late, by the delay pattern), a fraction of a second in."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_model, target)
    weights_file = target / "model.safetensors"
    weights = load_file(str(weights_file))
    config = json.loads((target / "config.json").read_text())
    count = int(config.get("num_codebooks", 8))
    hidden = weights["audio_lm_head.weight"].shape[1]
    for name in ("model.embed_tokens.weight", "model.embed_audio_tokens.embed_audio_tokens.weight"):
        table = weights[name].float()
        table[:, 0] = EMBED_OFFSET
        weights[name] = table.to(weights[name].dtype)
    head = weights["audio_lm_head.weight"].float()
    # after the final norm, dimension 0 is about sqrt(hidden) x its norm weight (1 at init)
    scale = bias / (hidden ** 0.5)
    for k in range(count):
        row = k * CODEBOOK_SIZE + STREAM_EOS
        head[row] = 0.0
        head[row, 0] = scale if codebooks is None or k in codebooks else -abs(scale)
    weights["audio_lm_head.weight"] = head.to(weights["audio_lm_head.weight"].dtype)
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    return target


WHISPER_SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                    "<|nocaptions|>", "<|notimestamps|>")


def tiny_whisper(target: Path, seed: int = 0) -> Path:
    """A random-init Whisper checkpoint of a few kB, written offline: a letters-only byte-level
    vocabulary, one encoder and one decoder layer. It transcribes anything as gibberish."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {symbol: i for i, symbol in enumerate([*letters, *("Ġ" + c for c in letters)])}
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": list(WHISPER_SPECIALS[1:])})
    end, start, *_, no_timestamps = tokenizer.convert_tokens_to_ids(list(WHISPER_SPECIALS))
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=64, pad_token_id=end, bos_token_id=end,
        eos_token_id=end, decoder_start_token_id=start, suppress_tokens=[], begin_suppress_tokens=[])
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, bos_token_id=end,
        no_timestamps_token_id=no_timestamps, is_multilingual=False, max_length=64)
    model.save_pretrained(target)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer
                     ).save_pretrained(target)
    return target
