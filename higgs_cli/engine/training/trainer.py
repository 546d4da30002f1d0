"""The training loop: LoRA on the base model, gradient accumulation, warm-up and cosine decay,
validation with early stopping, atomic checkpoints, resume, and out-of-memory halving.

Every optimizer step's gradient is the gradient of its whole global batch's loss: each micro-batch's
per-codebook sums are divided by the global batch's label counts before `backward`, so the micro-batch
size (and an out-of-memory halving of it) changes only the order of float sums, not the mathematics.
A resumed run restores the LoRA weights, the optimizer and the random states; the rows and the
learning rate of a step are functions of the step, so it continues as the uninterrupted run would have.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from higgs_cli.engine.request import FRAME_RATE, GenerationRequest
from higgs_cli.engine.training import state
from higgs_cli.engine.training.batch import TrainingRow, build_row, collate, label_counts
from higgs_cli.engine.training.lora import save_adapter, trainable, wrap
from higgs_cli.engine.training.loss import loss_sums
from higgs_cli.engine.training.order import micro_batches, step_rows
from higgs_cli.engine.training.settings import TrainSettings, learning_rate_at
from higgs_cli.errors import OutOfMemory, UsageError
from higgs_cli.fsutil import atomic_dir

Item = tuple[GenerationRequest, np.ndarray]
"""A training utterance: the prompt it is spoken after (the voice's reference turn in its history,
with codes) and its (K, T) codes."""
FINAL = "final"


@dataclass
class TrainResult:
    progress: state.Progress
    adapter: Path  # the adapter to keep: the best validation loss's, else the last step's
    stopped_early: bool
    resumed_from: int | None
    rows_per_second: float
    audio_seconds_per_second: float


Events = Callable[[str, dict], None]


def load_base(model_dir: Path, device: str | None, dtype: str | None):
    """transformers' model and tokenizer from a checkpoint folder, on the engine's device and number type
    (bf16 on GPUs; the engine's choice on CPUs)."""
    from transformers import AutoTokenizer, HiggsAudioV2ForConditionalGeneration

    from higgs_cli.engine.model.placement import pick_device, pick_dtype

    torch_device = pick_device(device)
    torch_dtype = pick_dtype(torch_device, dtype)
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(
        model_dir, dtype=torch_dtype, use_safetensors=True).to(torch_device)
    return model, AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)


def make_rows(items: list[Item], tokenizer, num_codebooks: int) -> list[TrainingRow]:
    return [build_row(request, [turn.codes for turn in request.history], codes, tokenizer, num_codebooks)
            for request, codes in items]


class Trainer:
    """One run in `run` (a folder of checkpoints): `train()` runs it to its end or an early stop."""

    def __init__(self, model, tokenizer, train_items: list[Item], validation_items: list[Item],
                 settings: TrainSettings, run: Path, identity: dict, on_event: Events | None = None) -> None:
        if not train_items:
            raise UsageError("nothing to train on: the training split is empty")
        self.settings = settings
        self.run = Path(run)
        # what must match to resume: the caller's (data, base model) and the settings, all but the
        # micro-batch (it changes only the order of float sums: a resume may lower it)
        self.identity = {**identity, "settings": {k: v for k, v in settings.to_dict().items() if k != "micro_batch"}}
        self.emit = on_event or (lambda kind, data: None)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        codebooks = model.config.num_codebooks
        self.rows = make_rows(train_items, tokenizer, codebooks)
        self.validation = make_rows(validation_items, tokenizer, codebooks)
        torch.manual_seed(settings.seed)  # the LoRA matrices' initial draw
        self.model = wrap(model, settings)
        self.model.train()
        self.params = list(trainable(self.model).values())
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        self.progress = state.Progress(identity=self.identity, micro_batch=settings.micro_batch)

    # ------------------------------------------------------------------ resuming

    def resume(self) -> int | None:
        """Continue from the newest checkpoint (None: there is none, the run starts at step 0)."""
        found = state.checkpoints(self.run)
        if not found:
            return None
        saved = state.read_progress(found[-1])
        if saved.identity != self.identity:
            changed = sorted(k for k in {*saved.identity, *self.identity}
                             if saved.identity.get(k) != self.identity.get(k))
            raise UsageError(f"cannot resume the run in {self.run}: its {', '.join(changed)} differ from this one's",
                             hint="resume with the same data and settings, or start over without --resume")
        self.progress = state.load_checkpoint(found[-1], self.model, self.optimizer)
        return self.progress.step

    # ------------------------------------------------------------------ steps

    def _step_loss(self, indexes: list[int]) -> float:
        """Forward and backward over one global batch in micro-batches; its loss."""
        counts = torch.from_numpy(label_counts([self.rows[i] for i in indexes])).clamp(min=1)
        lengths = [row.tokens for row in self.rows]
        total = 0.0
        for group in micro_batches(indexes, lengths, self.progress.micro_batch or self.settings.micro_batch):
            sums, _ = loss_sums(self.model, collate([self.rows[i] for i in group], self.pad))
            part = (sums / counts.to(sums.device)).sum()
            part.backward()
            total += float(part.detach())
        return total

    def _step(self, step: int) -> float:
        """One optimizer step; an out-of-memory error halves the micro-batch and retries the step."""
        indexes = step_rows(self.settings.seed, step, self.settings.batch_size, len(self.rows))
        before = state.random_states()
        while True:
            try:
                loss = self._step_loss(indexes)
                break
            except (torch.OutOfMemoryError, MemoryError) as error:
                micro = self.progress.micro_batch or self.settings.micro_batch
                self.optimizer.zero_grad(set_to_none=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if micro <= 1:
                    raise OutOfMemory(f"out of memory training one row at a time: {error}".splitlines()[0],
                                      batch_size=1, hint="train on shorter clips, or on a larger GPU") from None
                self.progress.micro_batch = micro // 2
                state.restore_random(before)  # the retried step draws the same dropout
                self.emit("oom", {"step": step + 1, "micro_batch": micro // 2})
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(self.settings, step)
        torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """The validation split's loss (transformers' loss of it as one batch); None without one."""
        if not self.validation:
            return None
        self.model.eval()
        sums = counts = None
        lengths = [row.tokens for row in self.validation]
        micro = self.progress.micro_batch or self.settings.micro_batch
        for group in micro_batches(list(range(len(self.validation))), lengths, micro):
            s, c = loss_sums(self.model, collate([self.validation[i] for i in group], self.pad))
            sums = s if sums is None else sums + s
            counts = c if counts is None else counts + c
        self.model.train()
        return float((sums / counts.clamp(min=1)).sum())

    def _evaluated(self, step: int) -> bool:
        """Validate after `step`; whether to stop early."""
        loss = self.evaluate()
        if loss is None:
            return False
        progress = self.progress
        progress.validation.append([step, loss])
        if progress.best_loss is None or loss < progress.best_loss:
            progress.best_loss, progress.best_step, progress.bad_evals = loss, step, 0
            state.save_best(self.run, self.model, progress)
        else:
            progress.bad_evals += 1
        self.emit("validation", {"step": step, "loss": loss, "best": progress.best_loss})
        return 0 < self.settings.patience <= progress.bad_evals

    def train(self, *, resume: bool = False) -> TrainResult:
        settings = self.settings
        resumed = self.resume() if resume else None
        progress = self.progress
        frames_per_row = float(np.mean([row.frames for row in self.rows]))
        stopped = False
        done_here = 0
        started = time.perf_counter()
        for step in range(progress.step, settings.steps):
            tick = time.perf_counter()
            loss = self._step(step)
            progress.step = step + 1
            progress.curve.append([step + 1, loss])
            progress.seconds += time.perf_counter() - tick
            done_here += 1
            self.emit("step", {"step": step + 1, "steps": settings.steps, "loss": loss,
                               "lr": learning_rate_at(settings, step)})
            last = step + 1 == settings.steps
            if (step + 1) % settings.eval_every == 0 or last:
                stopped = self._evaluated(step + 1)
            if (step + 1) % settings.checkpoint_every == 0 or last or stopped:
                state.save_checkpoint(self.run, self.model, self.optimizer, progress)
                self.emit("checkpoint", {"step": step + 1})
            if stopped:
                break
        elapsed = max(time.perf_counter() - started, 1e-9)
        with atomic_dir(self.run / FINAL) as tmp:
            save_adapter(self.model, tmp)
            (tmp / state.PROGRESS).write_text(progress.to_json(), encoding="utf-8")
        best = self.run / state.BEST
        keep = best if progress.best_step is not None and best.is_dir() else self.run / FINAL
        rows_done = done_here * settings.batch_size
        return TrainResult(progress, keep, stopped, resumed, rows_done / elapsed,
                           rows_done * frames_per_row / FRAME_RATE / elapsed)
