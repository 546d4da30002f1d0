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
