"""Checkpoints on disk: write random-init ones in the real layout, find and check real ones.

Layout (as on the Hub, and what `init_random` writes):
    config.json, generation_config.json, model.safetensors   the language model
    tokenizer.json, tokenizer_config.json, chat_template.jinja  the text tokenizer
    processor_config.json, preprocessor_config.json          the processor
    audio_tokenizer/ (config.json, model.safetensors)        the audio tokenizer
`processor_config.json` names the audio tokenizer by Hub id or folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from higgs_cli.engine.request import FRAME_RATE, SAMPLE_RATE, SAMPLES_PER_FRAME
from higgs_cli.errors import ModelError, UsageError
from higgs_cli.fsutil import atomic_dir

DEFAULT_MODEL = "bosonai/higgs-audio-v2-generation-3B-base"
DEFAULT_AUDIO_TOKENIZER = "bosonai/higgs-audio-v2-tokenizer"
RANDOM_MARKER = "higgs_random_init"
AUDIO_TOKENIZER_DIR = "audio_tokenizer"


MODEL_ENV = "HIGGS_MODEL"


def asked_model(cli_value: str | None = None, project_value: str | None = None) -> str | None:
    """The model a command names: --model, then $HIGGS_MODEL, then the project's `model:`; None when
    none does (then the default loads here, and any running server's model will do). The one
    reader of $HIGGS_MODEL."""
    return cli_value or os.environ.get(MODEL_ENV) or project_value or None


def resolve_model(cli_value: str | None = None, project_value: str | None = None) -> str:
    """--model, then $HIGGS_MODEL, then the project's `model:`, then the default Hub id."""
    return asked_model(cli_value, project_value) or DEFAULT_MODEL


def fingerprint_folder(folder: Path) -> str:
    """A short stable id for a checkpoint folder: its config and its weights' headers and edges.

    Read from the files alone (no torch), so cache keys are known before a model loads."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.suffix in {".json", ".safetensors"}):
        file = folder / name
        if file.suffix == ".json":
            digest.update(name.encode() + file.read_bytes())
            continue
        size = file.stat().st_size
        digest.update(f"{name}:{size}".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(1 << 20))
            handle.seek(max(0, size - (1 << 20)))
            digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:16]

# The real checkpoint's RoPE (transformers' defaults differ: 0.125 / 0.5 / 1024).
REAL_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0,
             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


@dataclass(frozen=True)
class RandomSize:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    codec_encoder: int  # DAC encoder width
    codec_decoder: int  # DAC decoder width
    codec_latent: int  # DAC latent size
    semantic_hidden: int  # HuBERT width
    semantic_layers: int
    semantic_conv: int  # HuBERT feature-extractor conv width
    codebook_dim: int


SIZES = {
    # A few MB of weights: for tests.
    "tiny": RandomSize(hidden=32, layers=2, heads=2, kv_heads=1, intermediate=64, codec_encoder=4,
                       codec_decoder=32, codec_latent=16, semantic_hidden=32, semantic_layers=1,
                       semantic_conv=16, codebook_dim=8),
    # The benchmark config: hidden 1024, 8 layers, full vocabulary and codebooks.
    "small": RandomSize(hidden=1024, layers=8, heads=16, kv_heads=8, intermediate=2816, codec_encoder=16,
                        codec_decoder=256, codec_latent=64, semantic_hidden=256, semantic_layers=2,
                        semantic_conv=128, codebook_dim=32),
    # The real model's dimensions (Llama-3.2-3B backbone, 5.4 B parameters, about
    # 11 GB in bf16) and its audio tokenizer's widths: for GPU benchmarks.
    "full": RandomSize(hidden=3072, layers=28, heads=24, kv_heads=8, intermediate=8192, codec_encoder=64,
                       codec_decoder=1024, codec_latent=256, semantic_hidden=768, semantic_layers=12,
                       semantic_conv=512, codebook_dim=64),
}
# Sizes built directly in bf16: the fp32 model would need twice the memory.
BF16_INIT = {"full"}


def lm_config(size: RandomSize):
    from transformers import HiggsAudioV2Config

    return HiggsAudioV2Config(
        hidden_size=size.hidden, num_hidden_layers=size.layers, num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads, head_dim=size.hidden // size.heads,
        intermediate_size=size.intermediate, codebook_size=1026, num_codebooks=8,
        max_position_embeddings=131072, rope_parameters=dict(REAL_ROPE),
        pad_token_id=128001, bos_token_id=128000, eos_token_id=128009,
    )


def _codec_config(size: RandomSize):
    from transformers import HiggsAudioV2TokenizerConfig

    config = HiggsAudioV2TokenizerConfig(
        target_bandwidths=[0.5, 1, 1.5, 2],  # 2 kbps at 25 fps x 10 bits = 8 codebooks
        codebook_dim=size.codebook_dim,
        acoustic_model_config={
            "encoder_hidden_size": size.codec_encoder, "decoder_hidden_size": size.codec_decoder,
            "hidden_size": size.codec_latent,
            "downsampling_ratios": [8, 5, 4, 2, 3], "upsampling_ratios": [8, 5, 4, 2, 3],
        },
        semantic_model_config={
            "hidden_size": size.semantic_hidden, "num_hidden_layers": size.semantic_layers,
            "num_attention_heads": 2, "intermediate_size": size.semantic_hidden * 2,
            "conv_dim": [size.semantic_conv] * 7, "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 4, "mask_time_prob": 0.0,
        },
    )
    if config.num_quantizers != 8 or config.frame_rate != FRAME_RATE:
        raise AssertionError(f"codec config gives {config.num_quantizers} codebooks at {config.frame_rate} fps")
    return config


def _make_informative_codec(config, seed: int):
    """A random audio tokenizer whose codes actually change the audio.

    transformers' init zeroes the codebooks (every code decodes alike) and uses
    tiny linears; random codebooks, larger projections and PyTorch's default
    conv init fix that; the last conv is scaled to keep the waveform in [-1, 1].
    """
    import torch
    from transformers import HiggsAudioV2TokenizerModel

    torch.manual_seed(seed)
    codec = HiggsAudioV2TokenizerModel(config).eval()
    with torch.no_grad():
        for layer in codec.quantizer.quantizers:
            embed = torch.randn_like(layer.codebook.embed)
            layer.codebook.embed.copy_(embed)
            layer.codebook.embed_avg.copy_(embed)
            layer.codebook.cluster_size.fill_(1.0)
            layer.project_out.weight.normal_(0.0, 1.0 / math.sqrt(layer.project_out.in_features))
            layer.project_in.weight.normal_(0.0, 1.0 / math.sqrt(layer.project_in.in_features))
        codec.fc2.weight.normal_(0.0, 1.0 / math.sqrt(codec.fc2.in_features))
        conv_types = (torch.nn.Conv1d, torch.nn.ConvTranspose1d)
        convs = [m for m in codec.acoustic_decoder.modules() if isinstance(m, conv_types)]
        for conv in convs:
            conv.reset_parameters()
        probe = torch.randint(0, 1024, (4, 8, 25))
        peak = codec.decode(probe).audio_values.abs().max().item()
        convs[-1].weight.mul_(0.6 / max(peak, 1e-6))
        if convs[-1].bias is not None:
            convs[-1].bias.mul_(0.6 / max(peak, 1e-6))
    return codec


def _text_tokenizer():
    """A byte-level tokenizer (no merges) with every Higgs special token at its real id."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from higgs_cli.engine import vocab

    byte_symbols = pre_tokenizers.ByteLevel.alphabet()
    table = {symbol: i for i, symbol in enumerate(sorted(byte_symbols))}
    for i in range(len(table), vocab.FIRST_SPECIAL_ID):
        table[f"<|placeholder_{i}|>"] = i
    backend = Tokenizer(models.BPE(vocab=table, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(vocab.special_tokens().values()))
    template = (Path(__file__).parent / "model" / "chat_template.jinja").read_text()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
        pad_token="<|end_of_text|>", chat_template=template, model_max_length=131072,
    )


def init_random(path: str | os.PathLike, *, size: str = "tiny", seed: int = 0, force: bool = False) -> Path:
    """Write a complete random-init checkpoint (model, audio tokenizer, text tokenizer,
    processor) to `path`. Its audio is noise: this is for tests, demos and benchmarks."""
    import torch
    from transformers import DacFeatureExtractor, HiggsAudioV2ForConditionalGeneration, HiggsAudioV2Processor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if size not in SIZES:
        raise UsageError(f"unknown size '{size}'", hint=f"choose one of: {', '.join(SIZES)}")
    path = Path(path).resolve()
    if path.exists() and any(path.iterdir()) and not force:
        raise UsageError(f"{path} exists and is not empty", hint="choose another folder or pass --force")
    spec = SIZES[size]
    with atomic_dir(path) as tmp:
        torch.manual_seed(seed)
        config = lm_config(spec)
        default_dtype = torch.get_default_dtype()
        if size in BF16_INIT:
            torch.set_default_dtype(torch.bfloat16)
        try:
            model = HiggsAudioV2ForConditionalGeneration(config).eval()
        finally:
            torch.set_default_dtype(default_dtype)
        model.config.update({RANDOM_MARKER: True, "higgs_random_size": size, "higgs_random_seed": seed})
        model.to(torch.bfloat16).save_pretrained(tmp)  # the real checkpoint is stored in bf16
        codec = _make_informative_codec(_codec_config(spec), seed + 1)
        codec.config.update({RANDOM_MARKER: True})
        codec.save_pretrained(tmp / AUDIO_TOKENIZER_DIR)
        codec.name_or_path = str(path / AUDIO_TOKENIZER_DIR)  # where it will live after the rename
        tokenizer = _text_tokenizer()
        features = DacFeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, hop_length=SAMPLES_PER_FRAME,
                                       padding_value=0.0)
        processor = HiggsAudioV2Processor(features, tokenizer, codec, chat_template=tokenizer.chat_template)
        processor.save_pretrained(tmp)
        (tmp / "README.md").write_text(
            f"# Random-init Higgs Audio V2 ({size}, seed {seed})\n\n"
            "Written by `higgs model init-random`. The weights are random: this model speaks noise.\n"
            "It has the real on-disk layout, for tests, offline demos and benchmarks.\n")
    return path


# ---------------------------------------------------------------- finding checkpoints


@dataclass(frozen=True)
class CheckpointFiles:
    model_dir: Path
    audio_tokenizer_dir: Path
    is_random: bool
    revision: str | None


def _read_json(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"{file} is unreadable or not valid JSON ({error})",
                         hint="the checkpoint is corrupt: download it again (`higgs model pull`)") from None


def check_model_dir(model_dir: Path) -> None:
    """Raise ModelError naming what is missing when a folder is not a complete checkpoint."""
    if not model_dir.is_dir():
        raise ModelError(f"{model_dir} is not a folder")
    missing = [name for name in ("config.json", "tokenizer_config.json") if not (model_dir / name).is_file()]
    if not (model_dir / "tokenizer.json").is_file() and not (model_dir / "tokenizer.model").is_file():
        missing.append("tokenizer.json")
    index = model_dir / "model.safetensors.index.json"
    if not (model_dir / "model.safetensors").is_file() and not index.is_file():
        missing.append("model.safetensors (or model.safetensors.index.json with its shards)")
    if missing:
        raise ModelError(f"{model_dir} is not a complete Higgs Audio V2 checkpoint: missing {', '.join(missing)}",
                         hint="download it again with `higgs model pull`, or point --model at a complete folder")
    config = _read_json(model_dir / "config.json")
    if config.get("model_type") != "higgs_audio_v2":
        raise ModelError(f"{model_dir} holds a '{config.get('model_type')}' model, not higgs_audio_v2")
    if index.is_file():
        shards = set(_read_json(index).get("weight_map", {}).values())
        absent = sorted(s for s in shards if not (model_dir / s).is_file())
        if absent:
            raise ModelError(f"{model_dir} is missing weight shards: {', '.join(absent)}",
                             hint="the download was interrupted: run `higgs model pull` again")


def _resolve_audio_tokenizer(model_dir: Path, *, revision: str | None) -> Path:
    """The audio tokenizer that goes with a model folder.

    A tokenizer folder inside the model folder wins (a copied or moved
    checkpoint keeps its own); then the processor's `audio_tokenizer_name_or_path`
    as a folder (absolute, or relative to the model folder, never to the
    current directory); then a folder beside the model; then the named Hub id.
    """
    inside = model_dir / AUDIO_TOKENIZER_DIR
    if (inside / "config.json").is_file():
        return inside
    processor = model_dir / "processor_config.json"
    named = None
    if processor.is_file():
        named = _read_json(processor).get("audio_tokenizer", {}).get("audio_tokenizer_name_or_path")
    candidates = []
    if named:
        candidates.append(Path(named) if Path(named).is_absolute() else model_dir / named)
    candidates.append(model_dir.parent / AUDIO_TOKENIZER_DIR)
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    hub_id = named if named and _looks_like_repo_id(named) else DEFAULT_AUDIO_TOKENIZER
    return download(hub_id, revision=None)


def download(repo_id: str, *, revision: str | None = None) -> Path:
    """Fetch (or find in the Hugging Face cache) a Hub repo; clear errors offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except RepositoryNotFoundError:
        raise ModelError(f"no model '{repo_id}' on the Hugging Face Hub (or it is private)",
                         hint="check the id, or pass a local folder with --model") from None
    except RevisionNotFoundError:
        raise ModelError(f"'{repo_id}' has no revision '{revision}'", hint="check --revision") from None
    except GatedRepoError:
        raise ModelError(f"'{repo_id}' is gated", hint="accept its terms on the Hub and run `hf auth login`") from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f"model '{repo_id}' is not in the local cache and the Hub cannot be reached (offline)",
            hint=f"on a connected machine run `higgs model pull {repo_id}`, or pass a local checkpoint folder "
                 "with --model PATH (`higgs model init-random DIR` makes a random one for testing)") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"could not download '{repo_id}': {error}",
                         hint="check your connection, or pass a local folder with --model") from None


def locate(model: str, *, revision: str | None = None) -> CheckpointFiles:
    """Turn a Hub id or a folder into checked local paths."""
    as_path = Path(model).expanduser()
    if as_path.exists() or model.startswith((".", "/", "~")) or os.sep in model and not _looks_like_repo_id(model):
        if not as_path.exists():
            raise ModelError(f"model folder {as_path} does not exist",
                             hint=f"check the path, give a Hub id such as {DEFAULT_MODEL}, or make a random "
                                  "test checkpoint with `higgs model init-random DIR`")
        model_dir = as_path.resolve()
    elif _looks_like_repo_id(model):
        model_dir = download(model, revision=revision)
    else:
        raise UsageError(f"'{model}' is neither a folder nor a Hub repo id (owner/name)",
                         hint="give a checkpoint folder (./models/higgs) or a Hub id (owner/name)")
    check_model_dir(model_dir)
    codec_dir = _resolve_audio_tokenizer(model_dir, revision=revision)
    if not (codec_dir / "model.safetensors").is_file():
        raise ModelError(f"audio tokenizer folder {codec_dir} has no model.safetensors",
                         hint="download it again (`higgs model pull`)")
    is_random = bool(_read_json(model_dir / "config.json").get(RANDOM_MARKER))
    return CheckpointFiles(model_dir, codec_dir, is_random, revision)


def _looks_like_repo_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "/", "~"))
