"""`make gpu-check`: the GPU path checked and measured in one command (under 8 minutes on a GPU).

    python benchmarks/gpu_check.py [--batches 1,8,32,64] [--steps 96] [--cpu]

On a GPU:
  * a tiny random checkpoint in bf16: greedy codes against transformers'
    generate(do_sample=False), CUDA-graph decode against eager decode, and
    sampled determinism (a seeded request alone, in a batch, and again);
  * the `full` random configuration (the real model's sizes) built in memory in
    bf16, no checkpoint on disk: decode steps/s and frames/s at each batch, eager
    and with the step captured in a CUDA graph; the device's copy bandwidth and
    each batch's floor (weights plus the KV cache a step reads); the fraction of
    the floor; the real-time factor; peak memory; load and compile times.
Without a GPU (or with --cpu) it runs the same checks on the CPU with the tiny
model only, and says so: a smoke test that keeps this script from rotting.
Prints a table and writes benchmarks/results/gpu_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# isort: off
import higgs_cli.engine  # noqa: F401  (before torch, as the engine runs)
import torch
# isort: on

from bench_engine import bytes_per_audio_step

from higgs_cli.engine.request import FRAME_RATE

ROOT = Path(__file__).resolve().parent
PROMPT_TOKENS = 96  # a synthetic prompt's length for the speed runs


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device, megabytes: int = 1024) -> float:
    """Bytes/s a device-to-device copy moves, counting what it reads and what it writes."""
    source = torch.ones(megabytes << 18, device=device)
    target = torch.empty_like(source)
    target.copy_(source)
    synchronize(device)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        target.copy_(source)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() * source.element_size() / best


# ---------------------------------------------------------------- correctness on the tiny model

def tiny_checks(device: torch.device) -> dict:
    """Greedy parity with transformers, graphed = eager, sampled determinism, on a tiny checkpoint."""
    from transformers import AutoProcessor, HiggsAudioV2ForConditionalGeneration

    from higgs_cli.engine.checkpoint import init_random
    from higgs_cli.engine.decode.loop import run_jobs
    from higgs_cli.engine.request import GREEDY, GenerationRequest, Sampling
    from higgs_cli.engine.session import ModelSession

    out: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        path = init_random(Path(folder) / "tiny", size="tiny", seed=0)
        eager = ModelSession.load(str(path), device=str(device))
        dtype = eager.dtype
        reference = HiggsAudioV2ForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
        processor = AutoProcessor.from_pretrained(path)
        texts = ["Hello there, how are you?", "A second line, a little longer than the first one."]
        greedy = [GenerationRequest(text=t, sampling=GREEDY, max_frames=40) for t in texts]
        system = {"role": "system", "content": [{"type": "text", "text": greedy[0].system}]}
        ours = eager.generate_frames(greedy, batch_size=2)
        equal, compared, parted_early = 0, 0, False
        for request, (frames, _) in zip(greedy, ours):
            inputs = processor.apply_chat_template(
                [system, {"role": "user", "content": [{"type": "text", "text": request.text}]}], tokenize=True,
                return_dict=True, add_generation_prompt=True, return_tensors="pt").to(device)
            theirs = reference.generate(**inputs, do_sample=False, max_new_tokens=len(frames),
                                        return_dict_in_generate=True).audio_sequences[0].cpu().numpy()
            length = min(len(theirs), len(frames))
            same = (theirs[:length] == frames[:length]).all(axis=1)
            agree = int(np.argmin(same)) if not same.all() else length  # frames equal before the first difference
            equal, compared = equal + agree, compared + len(frames)
            parted_early |= agree < min(16, length)
        # fp32 must agree throughout; bf16 rounds at different points in the two (fused products,
        # another attention kernel), so a random model's greedy paths part at a near-tie after a
        # while: there each line's first 16 frames must agree (tests/engine/test_engine_parity.py)
        exact = dtype == torch.float32
        out["greedy_parity"] = {"equal": equal == compared if exact else not parted_early,
                                "frames_equal_before_first_difference": equal, "frames": compared,
                                "dtype": str(dtype), "rule": "all frames" if exact else "first 16 frames of each line"}

        mixed = greedy + [GenerationRequest(text="Sampled line.", sampling=Sampling(temperature=0.9), seed=5,
                                            max_frames=30)]
        base = [frames for frames, _ in eager.generate_frames(mixed, batch_size=2)]
        if device.type == "cuda":
            start = time.perf_counter()
            graphed = ModelSession.load(str(path), device=str(device), compile=True)
            other = [frames for frames, _ in graphed.generate_frames(mixed, batch_size=2)]
            out["graph_equals_eager"] = {"equal": all(np.array_equal(a, b) for a, b in zip(base, other)),
                                         "what": "CUDA-graph step (compiled forward) against the eager step",
                                         "seconds": time.perf_counter() - start}
        else:  # no CUDA graph here: check the other half of the GPU loop, syncing every 8 steps
            jobs = eager._jobs(mixed)
            other = [frames for frames, _ in run_jobs(eager.runner, jobs, slots=2, device=device, dtype=dtype,
                                                      sync_every=8)]
            out["graph_equals_eager"] = {"equal": all(np.array_equal(a, b) for a, b in zip(base, other)),
                                         "what": "no GPU: host sync every 8 steps against every step"}

        sampled = GenerationRequest(text="Seeded line.", sampling=Sampling(temperature=0.9, top_k=50), seed=11,
                                    max_frames=25)
        alone = eager.generate_frames([sampled], batch_size=1)[0][0]
        batched = eager.generate_frames([greedy[1], sampled, greedy[0]], batch_size=3)[1][0]
        again = eager.generate_frames([sampled], batch_size=1)[0][0]
        out["sampled_determinism"] = {"equal": np.array_equal(alone, batched) and np.array_equal(alone, again)}
    return out


# ---------------------------------------------------------------- speed on the full configuration

def without_eos(model):
    """Zero the audio head's EOS rows: a random model then never ends a stream early, so every
    speed run decodes all its steps at its full batch."""
    from higgs_cli.engine.model.delay import STREAM_EOS

    head = model.audio_lm_head.weight
    with torch.no_grad():
        head.view(model.config.num_codebooks, -1, head.shape[-1])[:, STREAM_EOS] = 0
    return model


def build_full(device: torch.device):
    """The `full` random configuration in bf16, built directly on the device (no checkpoint on disk)."""
    from transformers import HiggsAudioV2ForConditionalGeneration

    from higgs_cli.engine.checkpoint import SIZES, lm_config

    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with device:
            model = HiggsAudioV2ForConditionalGeneration(lm_config(SIZES["full"])).eval()
    finally:
        torch.set_default_dtype(default)
    return without_eos(model)


def speed_run(runner, *, batch: int, steps: int, device: torch.device, compiled, graphs: bool,
              workspaces) -> dict:
    """Steady decode rate of `batch` synthetic greedy jobs of `steps` frames each."""
    from higgs_cli.engine.decode.loop import Job, run_jobs
    from higgs_cli.engine.model.prompt import Prompt
    from higgs_cli.engine.request import GREEDY

    rng = np.random.default_rng(batch)
    jobs = [Job(Prompt(rng.integers(0, 128000, PROMPT_TOKENS), np.zeros((0, runner.num_codebooks), np.int64), 0),
                GREEDY, i, steps) for i in range(batch)]
    stamps: list[tuple[float, int]] = []
    run = dict(slots=batch, device=device, dtype=next(runner.parameters()).dtype, compiled_decode=compiled,
               graphs=graphs, workspaces=workspaces)
    start = time.perf_counter()
    run_jobs(runner, jobs, **run)  # first: compiles and captures for this shape
    synchronize(device)
    first = time.perf_counter() - start
    start = time.perf_counter()
    run_jobs(runner, jobs, on_frames=lambda n: stamps.append((time.perf_counter(), n)), **run)
    total = time.perf_counter() - start
    decoding = stamps[1:]  # after the prefill's first frames
    frames = sum(n for _, n in decoding[1:])
    seconds = decoding[-1][0] - decoding[0][0]
    capacity = workspaces.items[-1].cache.capacity
    return {"batch": batch, "decode_steps_per_s": frames / batch / seconds, "frames_per_s": frames / seconds,
            "real_time_factor": frames / seconds / FRAME_RATE, "run_s": total, "first_run_s": first,
            "capacity": capacity}


def kv_bytes_per_step(config, batch: int, positions: int, itemsize: int) -> int:
    """Keys and values one decode step reads: every layer, every row, `positions` each."""
    per_position = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * itemsize
    return per_position * positions * batch


def full_speed(device: torch.device, batches: list[int], steps: int) -> dict:
    from higgs_cli.engine.decode.step import Workspaces
    from higgs_cli.engine.model.forward import Runner

    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    model = build_full(device)
    runner = Runner(model)
    synchronize(device)
    out: dict = {"load_s": time.perf_counter() - start, "bandwidth_Bps": copy_bandwidth(device)}
    weights = bytes_per_audio_step(SimpleNamespace(model=model, runner=runner))
    out["weight_bytes_per_step"] = weights
    compiled = torch.compile(runner.decode_step, dynamic=False)
    rows = []
    for batch in batches:
        for label, forward, graphs in (("eager", None, False), ("compiled", compiled, True)):
            try:
                result = speed_run(runner, batch=batch, steps=steps, device=device, compiled=forward,
                                   graphs=graphs, workspaces=Workspaces())
            except torch.cuda.OutOfMemoryError as error:
                rows.append({"batch": batch, "engine": label, "error": f"out of memory: {error}"[:300]})
                torch.cuda.empty_cache()
                continue
            # graphs attend over the whole cache; eager over the rows' mean context
            positions = result["capacity"] if graphs else PROMPT_TOKENS + steps // 2
            floor_bytes = weights + kv_bytes_per_step(model.config, batch, positions, 2)
            floor_steps = out["bandwidth_Bps"] / 2 / floor_bytes  # a copy's rate counts reads and writes
            result.update(engine=label, floor_bytes=floor_bytes, floor_steps_per_s=floor_steps,
                          fraction_of_floor=result["decode_steps_per_s"] / floor_steps,
                          compile_s=max(0.0, result["first_run_s"] - result["run_s"]))
            rows.append(result)
            print(f"  full, batch {batch}, {label}: {result['decode_steps_per_s']:.1f} steps/s", flush=True)
    out["runs"] = rows
    out["peak_memory_GB"] = torch.cuda.max_memory_allocated(device) / 1e9
    return out


def cpu_speed(batches: list[int], steps: int) -> dict:
    """The smoke form of the speed runs: the tiny configuration on the CPU, eager."""
    from transformers import HiggsAudioV2ForConditionalGeneration

    from higgs_cli.engine.checkpoint import SIZES, lm_config
    from higgs_cli.engine.decode.step import Workspaces
    from higgs_cli.engine.model.forward import Runner

    torch.manual_seed(0)
    runner = Runner(without_eos(HiggsAudioV2ForConditionalGeneration(lm_config(SIZES["tiny"])).eval()))
    device = torch.device("cpu")
    rows = [dict(speed_run(runner, batch=b, steps=steps, device=device, compiled=None, graphs=False,
                           workspaces=Workspaces()), engine="eager") for b in batches]
    return {"runs": rows, "note": "tiny configuration on the CPU: no GPU figures measured"}


def print_table(results: dict) -> None:
    print(f"\nHiggs GPU check on {results['device_name']} ({results['device']})")
    if results["device"] == "cpu":
        print("NO GPU: the smoke form ran on the CPU with the tiny model; GPU figures are not measured")
    for name, check in results["checks"].items():
        print(f"  [{'PASS' if check['equal'] else 'FAIL'}] {name}: "
              f"{json.dumps({k: v for k, v in check.items() if k != 'equal'})}")
    speed = results["speed"]
    if "bandwidth_Bps" in speed:
        print(f"copy bandwidth {speed['bandwidth_Bps'] / 1e12:.2f} TB/s (read + write); a step reads "
              f"{speed['weight_bytes_per_step'] / 1e9:.2f} GB of weights; load {speed['load_s']:.1f} s; "
              f"peak memory {speed['peak_memory_GB']:.1f} GB")
    print(f"{'batch':>5} | {'engine':>8} | {'steps/s':>8} | {'frames/s':>9} | {'x real time':>11} | "
          f"{'floor steps/s':>13} | {'of floor':>8} | {'compile s':>9}")
    for run in speed["runs"]:
        if "error" in run:
            print(f"{run['batch']:>5} | {run['engine']:>8} | {run['error']}")
            continue
        floor = f"{run['floor_steps_per_s']:.0f}" if "floor_steps_per_s" in run else "-"
        fraction = f"{100 * run['fraction_of_floor']:.0f}%" if "fraction_of_floor" in run else "-"
        compile_s = f"{run['compile_s']:.1f}" if "compile_s" in run else "-"
        print(f"{run['batch']:>5} | {run['engine']:>8} | {run['decode_steps_per_s']:>8.1f} | "
              f"{run['frames_per_s']:>9.1f} | {run['real_time_factor']:>11.1f} | {floor:>13} | {fraction:>8} | "
              f"{compile_s:>9}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,32,64", help="batch sizes for the full-size speed runs")
    parser.add_argument("--steps", type=int, default=96, help="decode steps per speed run")
    parser.add_argument("--cpu", action="store_true", help="the CPU smoke form even where a GPU is present")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check.json")
    args = parser.parse_args(argv)
    on_gpu = torch.cuda.is_available() and not args.cpu
    device = torch.device("cuda" if on_gpu else "cpu")
    batches = [int(b) for b in args.batches.split(",")]
    start = time.perf_counter()
    results: dict = {"device": device.type, "torch": torch.__version__,
                     "device_name": torch.cuda.get_device_name(device) if on_gpu else "CPU (no GPU)"}
    print("tiny checkpoint: parity, graphs, determinism ...", flush=True)
    results["checks"] = tiny_checks(device)
    print("speed ...", flush=True)
    results["speed"] = full_speed(device, batches, args.steps) if on_gpu else cpu_speed([1, 8], 24)
    results["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\n{results['seconds']:.0f} s; wrote {args.out}")
    return 0 if all(check["equal"] for check in results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
