"""`higgs voice train` and `higgs voice merge`: added to the voice app (`app.py` imports this module).
Commands parse, call one library function, print."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from higgs_cli.cli.options import (
    AsrModelOption,
    DeviceOption,
    JsonFlag,
    ModelOption,
    QuietFlag,
    RevisionOption,
    ValidationFractionOption,
)
from higgs_cli.cli.output import out
from higgs_cli.cli.voice import Name, app
from higgs_cli.engine.training.settings import RANGES, TARGET_GROUPS, TrainSettings, expand_targets

DEFAULTS = TrainSettings()


def _opt(name: str, help: str, *flags: str):
    rule = RANGES[name]
    return typer.Option(*flags, help=f"{help} ({rule.describe()}).")


@contextlib.contextmanager
def training_progress() -> Iterator:
    """Yield the trainer's event callback: a bar with step, loss, validation loss and ETA (nothing
    under --json or -q, but out-of-memory halvings are always said)."""
    if not out.show_progress:
        def quiet(kind: str, data: dict) -> None:
            if kind == "oom":
                out.warn(f"out of memory at step {data['step']}: micro-batch lowered to {data['micro_batch']}")
        yield quiet
        return
    columns = [TextColumn("{task.description}", markup=False), BarColumn(), TextColumn("{task.fields[detail]}",
                                                                                     markup=False),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=out.err, transient=True) as bar:
        task = bar.add_task("training", total=None, detail="")
        seen = {"validation": "-"}

        def on_event(kind: str, data: dict) -> None:
            if kind == "phase":
                bar.update(task, description=data["what"])
            elif kind == "step":
                bar.update(task, description="training", total=data["steps"], completed=data["step"],
                           detail=f"step {data['step']}/{data['steps']}  loss {data['loss']:.3f}  "
                                  f"val {seen['validation']}  lr {data['lr']:.2e}")
            elif kind == "validation":
                seen["validation"] = f"{data['loss']:.3f}"
            elif kind == "oom":
                out.warn(f"out of memory at step {data['step']}: micro-batch lowered to {data['micro_batch']}")

        yield on_event


@app.command()
def train(
    name: Name,
    data: Annotated[Path, typer.Argument(metavar="DATA", show_default=False, help=(
        "A folder of audio files with same-named .txt transcripts, a CSV/TSV/JSONL sheet (audio, text), "
        "or a recording without a transcript (with --asr-model)."))],
    steps: Annotated[int, _opt("steps", "Optimizer steps", "--steps")] = DEFAULTS.steps,
    learning_rate: Annotated[float, _opt("learning_rate", "Peak learning rate", "--lr", "--learning-rate")]
        = DEFAULTS.learning_rate,
    batch_size: Annotated[int, _opt("batch_size", "Clips per optimizer step (the global batch)", "--batch-size")]
        = DEFAULTS.batch_size,
    micro_batch: Annotated[int, _opt("micro_batch", "Clips per forward pass; the rest is gradient accumulation",
                                     "--micro-batch")] = DEFAULTS.micro_batch,
    warmup_steps: Annotated[int, _opt("warmup_steps", "Linear warm-up steps", "--warmup-steps")]
        = DEFAULTS.warmup_steps,
    rank: Annotated[int, _opt("rank", "LoRA rank", "--rank")] = DEFAULTS.rank,
    alpha: Annotated[float, _opt("alpha", "LoRA alpha (scale alpha/rank)", "--alpha")] = DEFAULTS.alpha,
    dropout: Annotated[float, _opt("dropout", "LoRA dropout", "--dropout")] = DEFAULTS.dropout,
    target: Annotated[list[str] | None, typer.Option("--target", help=(
        f"A module LoRA wraps, repeatable: a group ({', '.join(TARGET_GROUPS)}) or a module name such as "
        "audio_lm_head. Default: attention and audio-ffn."))] = None,
    eval_every: Annotated[int, _opt("eval_every", "Validate every N steps", "--eval-every")] = DEFAULTS.eval_every,
    patience: Annotated[int, _opt("patience", "Stop after N validations without a better loss; 0 never",
                                  "--patience")] = DEFAULTS.patience,
    checkpoint_every: Annotated[int, _opt("checkpoint_every", "Checkpoint every N steps", "--checkpoint-every")]
        = DEFAULTS.checkpoint_every,
    seed: Annotated[int, _opt("seed", "Seed: the same seed, data and settings give the same run", "--seed")]
        = DEFAULTS.seed,
    validation_fraction: ValidationFractionOption = 0.1,
    resume: Annotated[bool, typer.Option("--resume", help=(
        "Continue this voice's last run from its newest checkpoint (same data and settings).")) ] = False,
    asr_model: AsrModelOption = None,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Train a LoRA adapter for library voice NAME on DATA and store it with the voice: every line the
    voice speaks then uses it (see docs/training.md)."""
    from higgs_cli.cli.progress import SESSION_NOTES
    from higgs_cli.engine.checkpoint import locate, resolve_model
    from higgs_cli.sessions import SessionSpec, open_session
    from higgs_cli.training.data import LazyRecognizer
    from higgs_cli.training.run import train_voice
    from higgs_cli.voices.library import VoiceLibrary

    settings = TrainSettings(steps=steps, learning_rate=learning_rate, batch_size=batch_size,
                             micro_batch=min(micro_batch, batch_size), warmup_steps=warmup_steps, rank=rank,
                             alpha=alpha, dropout=dropout,
                             targets=expand_targets(target) if target else DEFAULTS.targets, eval_every=eval_every,
                             patience=patience, checkpoint_every=checkpoint_every, seed=seed)
    VoiceLibrary().get(name)  # before any model loads
    spec = SessionSpec(model=model, revision=revision, device=device, no_server=True)  # the codec runs here
    session = open_session(spec, lazy=True, notes=SESSION_NOTES)
    model_dir = locate(resolve_model(model), revision=revision).model_dir
    recognizer = LazyRecognizer(asr_model, device) if asr_model else None
    with training_progress() as on_event:
        outcome = train_voice(name, data, settings, session, model_dir, resume=resume,
                              validation_fraction=validation_fraction, device=device, recognizer=recognizer,
                              on_event=on_event)
    for warning in outcome.report.warnings:
        out.warn(warning)

    def human(console: Console) -> None:
        m = outcome.manifest
        best = (f", best validation loss {m['best_validation_loss']:.3f} at step {m['best_step']}"
                if m["best_validation_loss"] is not None else "")
        console.print(Text.assemble("trained ", (name, "bold"), f": {m['steps_done']} steps, loss "
                                    f"{m['final_loss']:.3f}{best}; kept the {m['kept']}'s adapter"
                                    + (" (stopped early)" if outcome.stopped_early else "")))
        console.print(f"  {m['rows_per_second']:.2f} clips/s, {m['seconds']:.1f} s of training; "
                      f"adapter {outcome.adapter_digest[:12]}")

    out.result(outcome.to_dict(), human)


@app.command()
def merge(
    name: Name,
    output: Annotated[Path, typer.Option("--output", "-o", show_default=False,
                                         help="The folder to write the merged checkpoint to.")],
    dtype: Annotated[str | None, typer.Option("--dtype", show_default=False, help=(
        "Store the weights as bf16, fp16 or fp32 (default: as the base checkpoint stores them)."))] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the output folder if it exists.")] = False,
    model: ModelOption = None,
    revision: RevisionOption = None,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Write the base model with voice NAME's adapter merged into it: a full checkpoint transformers loads
    as is (and `--model DIR` speaks with, without the adapter)."""
    from higgs_cli.cli.progress import status
    from higgs_cli.engine.checkpoint import locate, resolve_model
    from higgs_cli.errors import UsageError
    from higgs_cli.training.merge import merge_voice

    if dtype is not None and dtype not in ("bf16", "fp16", "fp32"):
        raise UsageError(f"--dtype {dtype}: choose bf16, fp16 or fp32")
    model_dir = locate(resolve_model(model), revision=revision).model_dir
    with status(f"merging {name}'s adapter into {model_dir}"):
        done = merge_voice(name, output, model_dir, dtype=dtype, force=force)
    out.result(done, lambda console: console.print(Text.assemble("wrote ", (str(output), "bold"), f": {model_dir} "
                                                                 f"with {name}'s adapter merged")))
