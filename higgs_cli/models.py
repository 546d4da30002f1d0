"""Facts about checkpoints without loading torch: the local cache, config summaries."""

from __future__ import annotations

import json
from pathlib import Path

from higgs_cli.errors import ModelError


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def summarize_config(model_dir: Path) -> dict:
    """The architecture a checkpoint folder declares, read from its config.json."""
    config_file = model_dir / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {config_file}: {error}",
                         hint="point at a Higgs Audio V2 checkpoint folder or a cached Hub id") from None
    hidden = config.get("hidden_size")
    layers = config.get("num_hidden_layers")
    vocab = config.get("vocab_size")
    inter = config.get("intermediate_size")
    heads, kv, head_dim = (config.get("num_attention_heads"), config.get("num_key_value_heads"),
                           config.get("head_dim"))
    codebooks, codebook_size = config.get("num_codebooks", 8), config.get("codebook_size")
    params = None
    if all(isinstance(v, int) for v in (hidden, layers, vocab, inter, heads, kv, head_dim, codebook_size)):
        attention = hidden * head_dim * (2 * heads + 2 * kv)
        mlps = 2 * 3 * hidden * inter
        per_layer = attention + mlps + 4 * hidden
        params = vocab * hidden + layers * per_layer + 2 * codebooks * codebook_size * hidden + hidden
    return {
        "model_type": config.get("model_type"),
        "hidden_size": hidden, "layers": layers, "attention_heads": heads, "kv_heads": kv,
        "intermediate_size": inter, "vocab_size": vocab, "codebooks": codebooks, "codebook_size": codebook_size,
        "rope": config.get("rope_parameters") or config.get("rope_scaling"),
        "parameters": params,
        "random_weights": bool(config.get("higgs_random_init")),
        "size_bytes": folder_size(model_dir),
    }


def cached_models() -> list[dict]:
    """Higgs Audio repos in the Hugging Face cache, with their sizes and revisions."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        return []
    rows = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or "higgs" not in repo.repo_id.lower():
            continue
        rows.append({"repo_id": repo.repo_id, "size_bytes": repo.size_on_disk,
                     "revisions": sorted(r.commit_hash[:12] for r in repo.revisions),
                     "path": str(repo.repo_path)})
    return rows

