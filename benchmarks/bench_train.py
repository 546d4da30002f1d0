"""Training benchmark: higgs' LoRA trainer against a community-style loop, and the end-to-end check.

    python benchmarks/bench_train.py [--size tiny|small] [--clips 16] [--steps 10] [--check-steps 500]

On one random-init checkpoint (`init-random --size tiny` by default), with the same synthetic clips
(1-3 s tones with noise), the same LoRA settings and global batch:
  * higgs: codes encoded once before training, batches from cached codes (`engine/training`),
  * community-style: transformers' processor on the raw audio every step (the codec in the loop),
    `model(**inputs).loss`, peft, a plain loop (what train-higgs-audio and similar scripts do),
printing samples/s, audio seconds trained per second, step time and peak memory (max RSS) for each,
and where higgs' time goes (forward+backward vs the rest). Then the end-to-end check of issue 33.6:
one 1 s clip trained until the loss is small (lr 2e-2, `audio_lm_head` among the targets), and
whether greedy generation with the adapter reproduces the clip's codes. Random weights: these
figures are about speed and correctness of the pipeline, not voice quality.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from higgs_cli.engine.checkpoint import init_random  # noqa: E402
from higgs_cli.engine.model.prompt import messages_for  # noqa: E402
from higgs_cli.engine.request import GREEDY, Adapter, GenerationRequest, Turn  # noqa: E402
from higgs_cli.engine.session import ModelSession  # noqa: E402
from higgs_cli.engine.training.settings import AUDIO_HEAD, DEFAULT_TARGETS, TrainSettings  # noqa: E402
from higgs_cli.engine.training.trainer import Trainer, load_base  # noqa: E402


def clips(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        t = np.arange(int(24000 * (1.0 + 2.0 * rng.random()))) / 24000
        out.append((0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t) + rng.normal(0, 0.03, t.size)).astype(np.float32))
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_higgs(model_dir: Path, session, audio: list[np.ndarray], settings: TrainSettings) -> dict:
    started = time.perf_counter()
    codes = session.encode_many(audio)  # once, before training (the prepare step's cache)
    encode_s = time.perf_counter() - started
    items = [(GenerationRequest(text=f"Clip number {i}."), c) for i, c in enumerate(codes)]
    model, tokenizer = load_base(model_dir, "cpu", None)
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(model, tokenizer, items, [], settings, Path(run), {})
        result = trainer.train()
    steps = result.progress.step
    return {"samples_per_s": result.rows_per_second, "audio_s_per_s": result.audio_seconds_per_second,
            "step_s": result.progress.seconds / steps, "encode_once_s": encode_s, "peak_rss_mb": peak_rss_mb()}


def bench_community(model_dir: Path, audio: list[np.ndarray], settings: TrainSettings) -> dict:
    """The processor on raw audio every step, transformers' loss, peft, a plain AdamW loop."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor, HiggsAudioV2ForConditionalGeneration

    processor = AutoProcessor.from_pretrained(model_dir)
    model = HiggsAudioV2ForConditionalGeneration.from_pretrained(model_dir)
    model = get_peft_model(model, LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                                             lora_dropout=settings.dropout, target_modules=list(settings.targets)))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    rng = np.random.default_rng(settings.seed)
    frames = 0
    started = time.perf_counter()
    for _ in range(settings.steps):
        batch = rng.choice(len(audio), settings.batch_size)
        for index in batch:  # one clip per forward (the processor does not batch audio)
            messages = messages_for(GenerationRequest(text=f"Clip number {index}."))
            messages.append({"role": "assistant", "content": [{"type": "audio", "audio": audio[index]}]})
            inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, sampling_rate=24000,
                                                   return_tensors="pt", output_labels=True)
            (model(**inputs).loss / settings.batch_size).backward()
            frames += len(audio[index]) / 960
        optimizer.step()
        optimizer.zero_grad()
    elapsed = time.perf_counter() - started
    rows = settings.steps * settings.batch_size
    return {"samples_per_s": rows / elapsed, "audio_s_per_s": frames / 25 / elapsed,
            "step_s": elapsed / settings.steps, "peak_rss_mb": peak_rss_mb()}


def check_convergence(model_dir: Path, session, steps: int) -> dict:
    """Issue 33.6: one 1 s clip, trained until the loss is small; greedy generation reproduces it."""
    from higgs_cli.engine.model.delay import revert_delay_pattern
    from higgs_cli.voices.adapter import adapter_digest

    t = np.arange(24000) / 24000
    clip = (0.3 * np.sin(2 * np.pi * 220 * t) + np.random.default_rng(0).normal(0, 0.05, t.size)).astype(np.float32)
    codes = session.encode_audio(clip)
    voice = Turn("A reference.", codes=session.encode_audio(clip[:12000]))
    request = GenerationRequest(text="Hello there.", history=(voice,))
    settings = TrainSettings(steps=steps, batch_size=1, micro_batch=1, warmup_steps=0, rank=8, alpha=16, dropout=0.0,
                             learning_rate=2e-2, eval_every=10**6, checkpoint_every=10**6,
                             targets=DEFAULT_TARGETS + AUDIO_HEAD)
    model, tokenizer = load_base(model_dir, "cpu", None)
    with tempfile.TemporaryDirectory() as run:
        result = Trainer(model, tokenizer, [(request, codes)], [], settings, Path(run), {}).train()
        curve = [loss for _, loss in result.progress.curve]
        adapter = Adapter(str(result.adapter), adapter_digest(result.adapter))
        spoken = Turn(voice.text, codes=voice.codes, adapter=adapter)
        trained = GenerationRequest(text="Hello there.", history=(spoken,), sampling=GREEDY, max_frames=codes.shape[1])
        [(frames, _)] = session.generate_frames([trained])
    made = revert_delay_pattern(frames[1:])
    n = min(made.shape[1], codes.shape[1])
    same = (made[:, :n] == codes[:, :n]).all(0)
    first_wrong = int(np.argmin(same)) if not same.all() else n
    return {"steps": steps, "loss_first": curve[0], "loss_60": curve[min(59, len(curve) - 1)], "loss_last": curve[-1],
            "frames_reproduced": first_wrong, "frames": int(codes.shape[1]), "seconds": result.progress.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", choices=["tiny", "small"])
    parser.add_argument("--model", type=Path, help="an existing checkpoint folder instead of a random one")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--check-steps", type=int, default=500, help="0 skips the end-to-end check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or init_random(Path(tmp) / args.size, size=args.size, seed=0)
        session = ModelSession.load(str(model_dir), device="cpu")
        audio = clips(args.clips)
        settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, micro_batch=args.batch_size,
                                 warmup_steps=1, rank=16, alpha=32, eval_every=10**6, checkpoint_every=10**6)
        print(f"checkpoint {args.size}, {args.clips} clips ({sum(len(a) for a in audio) / 24000:.1f} s), "
              f"{args.steps} steps of {args.batch_size}, LoRA r16 on {', '.join(settings.targets)}; "
              f"torch threads {torch.get_num_threads()}, dtype {session.dtype}")
        ours = bench_higgs(model_dir, session, audio, settings)
        theirs = bench_community(model_dir, audio, settings)
        for name, row in (("higgs (codes cached)", ours), ("community-style (processor each step)", theirs)):
            print(f"{name:40s} {row['samples_per_s']:7.2f} samples/s  {row['audio_s_per_s']:7.2f} audio s/s  "
                  f"step {row['step_s'] * 1000:7.1f} ms  peak RSS {row['peak_rss_mb']:.0f} MB")
        print(f"speed-up {ours['samples_per_s'] / theirs['samples_per_s']:.2f}x; higgs encoded the clips once "
              f"in {ours['encode_once_s']:.2f} s")
        if args.check_steps:
            check = check_convergence(model_dir, session, args.check_steps)
            print(f"end-to-end: loss {check['loss_first']:.2f} -> {check['loss_60']:.2f} at step 60 -> "
                  f"{check['loss_last']:.3f} at step {check['steps']} ({check['seconds']:.1f} s); greedy generation "
                  f"reproduces {check['frames_reproduced']}/{check['frames']} frames of the clip")


if __name__ == "__main__":
    main()
