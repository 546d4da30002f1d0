"""The text vocabulary layout Higgs Audio V2 shares with Llama 3.2: 128000 ordinary
ids, then 256 special tokens at 128000-128255, some renamed by Boson."""

from __future__ import annotations

FIRST_SPECIAL_ID = 128000
VOCAB_SIZE = 128256

NAMED_SPECIAL_TOKENS = {
    128000: "<|begin_of_text|>",
    128001: "<|end_of_text|>",
    128004: "<|finetune_right_pad_id|>",
    128006: "<|start_header_id|>",
    128007: "<|end_header_id|>",
    128008: "<|eom_id|>",
    128009: "<|eot_id|>",
    128010: "<|python_tag|>",
    128011: "<|audio_bos|>",
    128012: "<|audio_eos|>",
    128013: "<|audio_out_bos|>",
    128015: "<|AUDIO|>",
    128016: "<|AUDIO_OUT|>",
    128018: "<|scene_desc_start|>",
    128019: "<|scene_desc_end|>",
    128022: "<SE>",
    128023: "</SE>",
    128024: "<SE_s>",
    128025: "</SE_s>",
    128026: "<SE_e>",
    128027: "</SE_e>",
}


def special_token(token_id: int) -> str:
    """The token string at a special id (reserved ones keep Llama 3.2's names)."""
    if token_id in NAMED_SPECIAL_TOKENS:
        return NAMED_SPECIAL_TOKENS[token_id]
    offset = token_id - FIRST_SPECIAL_ID
    reserved = offset - 2 if offset < 4 else offset - 3 if offset < 8 else offset - 8
    return f"<|reserved_special_token_{reserved}|>"


def special_tokens() -> dict[int, str]:
    return {i: special_token(i) for i in range(FIRST_SPECIAL_ID, VOCAB_SIZE)}
