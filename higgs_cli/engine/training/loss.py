"""The audio loss of a batch, as sums that a global batch divides once.

transformers' `HiggsAudioV2ForConditionalGeneration(...).loss` is, per codebook, the mean
cross-entropy of the next position's label (labels shifted by one, -100 skipped), summed over the
codebooks. Here the same numbers come as per-codebook sums and counts, so that gradient accumulation
and several processes divide by the global batch's counts (`label_counts`) and their gradient equals
the one of the whole batch at once. The audio head runs only where a label follows, not over every
text position. `tests/engine/test_training_loss.py` holds it to transformers' loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from higgs_cli.engine.training.batch import IGNORE


def base_of(model):
    """The transformers model under a peft wrapper (LoRA layers stay in its modules), or `model` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def loss_sums(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-codebook cross-entropy sums (K,) (float32, with grad) and label counts (K,) of a batch."""
    lm = base_of(model)
    config = lm.config
    device = next(lm.parameters()).device
    batch = {name: value.to(device) for name, value in batch.items()}
    hidden = lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      audio_input_ids=batch["audio_input_ids"],
                      audio_input_ids_mask=batch["audio_input_ids_mask"]).last_hidden_state
    ids = batch["input_ids"]
    placeholders = (ids == config.audio_token_id) | (ids == config.audio_delay_token_id)
    labels = torch.full((*ids.shape, config.num_codebooks), IGNORE, dtype=torch.long, device=device)
    labels[placeholders] = batch["audio_labels"][batch["audio_input_ids_mask"]]
    targets = labels[:, 1:]  # the label of the next position
    wanted = (targets != IGNORE).any(-1)
    logits = lm.audio_lm_head(hidden[:, :-1][wanted]).float()
    logits = logits.view(-1, config.num_codebooks, config.codebook_size)
    chosen = targets[wanted]
    losses = F.cross_entropy(logits.reshape(-1, config.codebook_size), chosen.reshape(-1), ignore_index=IGNORE,
                             reduction="none").view(chosen.shape)
    return losses.sum(0), (chosen != IGNORE).sum(0)


def batch_loss(model, batch: dict) -> torch.Tensor:
    """transformers' loss of one batch: the per-codebook means, summed."""
    sums, counts = loss_sums(model, batch)
    return (sums / counts.clamp(min=1)).sum()
