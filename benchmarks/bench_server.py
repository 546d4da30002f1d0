"""`higgs serve` benchmarks: continuous batching across requests, and a warm server for `higgs say`.

    python benchmarks/bench_server.py [--model DIR] [--requests 32] [--frames 50]

Against one server (a random-init checkpoint, default `init-random --size small`,
the one bench_engine.py makes):
  * the same requests sent one at a time, and all at once: throughput (audio
    seconds per wall second) and its ratio, p50/p95 latency, and the time to the
    first audio bytes of a streamed (pcm) request, alone and under the full load;
  * `higgs say` for one short line through the warm server, and through a second
    one started with `--compile` (its batch-1 step compiled ahead of time, built once
    under benchmarks/results/server-home and kept), vs one that loads the model in
    its own process (`--no-server`), end to end, best of --say-runs each.

The speed of the shared virtual machines this runs on drifts by a third within
minutes, so the two sides of each comparison are interleaved: the sequential
requests go in --rounds groups, each followed by one run of all of them at once,
and the ratio compares the sequential total with the mean concurrent run (each
round's own ratio is printed too); the two kinds of `say` alternate.
Prints the figures against the targets (issues 19 and 34: 32 concurrent requests at least 4x the
throughput of the same requests one at a time; a warm `say` at least 5x faster than one that loads
the model), each side measured in the same run, with the machine's load average before and after
(the machine is shared), and writes benchmarks/results/server.json.
A random model speaks noise: these figures are about speed only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from higgs_cli.engine.request import SAMPLE_RATE

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
TARGET_THROUGHPUT_RATIO = 4.0
TARGET_SAY_SPEEDUP = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def start_server(model: Path, home: Path, slots: int, *extra: str) -> tuple[subprocess.Popen, str, float]:
    """A server, its URL, and the seconds it took to be ready."""
    env = {**os.environ, "HIGGS_HOME": str(home), "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "higgs_cli", "--json", "serve", "--model", str(model), "--port",
                             "0", "--max-batch", str(slots), *extra], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=REPO)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("higgs serve did not start")
    return proc, json.loads(line)["url"], time.perf_counter() - start


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def body(i: int, frames: int) -> dict:
    return {"model": "tts-1", "input": f"Line number {i}, read at an even pace for the benchmark.",
            "response_format": "pcm", "seed": i, "max_new_tokens": frames}


def one(client: httpx.Client, payload: dict) -> tuple[float, float]:
    """(latency, audio seconds) of one whole request."""
    start = time.perf_counter()
    response = client.post("/v1/audio/speech", json=payload)
    response.raise_for_status()
    return time.perf_counter() - start, len(response.content) / 2 / SAMPLE_RATE


def first_audio(client: httpx.Client, payload: dict) -> float:
    """Seconds until the first audio bytes of a streamed request arrive (the rest is read too)."""
    start = time.perf_counter()
    first = None
    with client.stream("POST", "/v1/audio/speech", json=payload) as response:
        for chunk in response.iter_bytes():
            if chunk and first is None:
                first = time.perf_counter() - start
    return first if first is not None else float("nan")


def concurrently(url: str, payloads: list[dict], worker) -> tuple[float, list]:
    """Send every payload at once, each from its own client; (wall seconds, results).

    The clients are made and their threads wait at a barrier before the clock starts: making
    an httpx client costs about 20 ms of CPU here (its TLS context), which 32 clients would
    otherwise take from the server inside the timed run, while the sequential side reuses one.
    """
    results: list = [None] * len(payloads)
    clients = [httpx.Client(base_url=url, timeout=3600, trust_env=False) for _ in payloads]
    ready = threading.Barrier(len(payloads) + 1)

    def run(i: int) -> None:
        ready.wait()
        results[i] = worker(clients[i], payloads[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start, results
    finally:
        for client in clients:
            client.close()


def timed_say(home: Path, *args: str) -> float:
    env = {**os.environ, "HIGGS_HOME": str(home), "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "higgs_cli", "-q", "say", *args], check=True, env=env, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def print_throughput(figures: dict, args) -> None:
    audio = figures["audio_seconds"]
    print(f"\n{os.cpu_count()} CPUs, load average (1, 5, 15 min) at the start "
          + "/".join(f"{x:.1f}" for x in figures["load_before"]))
    print(f"{args.requests} requests of {args.frames} frames, {audio:.1f} s of audio, {args.slots} slots:")
    print(f"  one at a time  {figures['sequential_wall_s']:7.2f} s wall  {figures['sequential_audio_s_per_s']:6.2f} "
          f"audio s/s  latency p50 {figures['sequential_p50_s']:.2f} s  p95 {figures['sequential_p95_s']:.2f} s")
    print(f"  all at once    {figures['concurrent_wall_s']:7.2f} s wall  {figures['concurrent_audio_s_per_s']:6.2f} "
          f"audio s/s  latency p50 {figures['concurrent_p50_s']:.2f} s  p95 {figures['concurrent_p95_s']:.2f} s")
    print(f"  throughput ratio {figures['throughput_ratio']:.2f}x (target >= {TARGET_THROUGHPUT_RATIO:g}x: "
          f"{'met' if figures['throughput_ratio'] >= TARGET_THROUGHPUT_RATIO else 'MISSED'}); by round: "
          + ", ".join(f"{r:.2f}x" for r in figures["round_ratios"])
          + " (all at once: " + ", ".join(f"{w:.1f}" for w in figures["concurrent_walls_s"]) + " s)")
    print(f"  time to first audio (streamed pcm): alone {figures['first_audio_alone_s']:.2f} s; with "
          f"{args.requests} at once p50 {figures['first_audio_loaded_p50_s']:.2f} s, "
          f"p95 {figures['first_audio_loaded_p95_s']:.2f} s")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="checkpoint folder [default: a small random one, made once]")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--frames", type=int, default=50, help="audio frames per request (25 = 1 s)")
    parser.add_argument("--slots", type=int, default=32, help="the server's --max-batch")
    parser.add_argument("--rounds", type=int, default=4, help="sequential groups, each beside a concurrent run")
    parser.add_argument("--say-runs", type=int, default=3, help="runs of each kind of `higgs say` (best kept)")
    parser.add_argument("--no-compile", action="store_true",
                        help="no second server with --compile (its build takes minutes on a loaded machine)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "server.json")
    args = parser.parse_args()

    model = args.model
    if model is None:
        from higgs_cli.engine.checkpoint import init_random

        model = ROOT / "results" / "model-small"
        if not (model / "config.json").is_file():
            print(f"writing a random small checkpoint to {model} ...", flush=True)
            init_random(model, size="small", seed=0, force=True)
    home = ROOT / "results" / "server-home"  # keeps the compiled batch-1 step between runs
    home.mkdir(parents=True, exist_ok=True)
    print(f"starting higgs serve --model {model} --max-batch {args.slots} ...", flush=True)
    proc, url, _ = start_server(model, home, args.slots)
    compiled = None
    figures: dict = {"model": str(model), "requests": args.requests, "frames": args.frames, "slots": args.slots,
                     "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    try:
        payloads = [body(i, args.frames) for i in range(args.requests)]
        rounds = max(1, min(args.rounds, args.requests))
        sequential: list = [None] * len(payloads)
        group_walls, together_walls, together = [], [], []
        with httpx.Client(base_url=url, timeout=3600, trust_env=False) as client:
            one(client, body(999, 10))  # warm-up: first allocations
            concurrently(url, payloads[:rounds], one)
            for r in range(rounds):
                start = time.perf_counter()
                for i in range(r, len(payloads), rounds):
                    sequential[i] = one(client, payloads[i])
                group_walls.append(time.perf_counter() - start)
                wall, results = concurrently(url, payloads, one)
                together_walls.append(wall)
                together.extend(results)
            alone_first = first_audio(client, body(1000, args.frames))
        _, firsts = concurrently(url, payloads, first_audio)
        audio = sum(seconds for _, seconds in sequential)
        sequential_wall, together_wall = sum(group_walls), statistics.mean(together_walls)
        sizes = [len(range(r, len(payloads), rounds)) for r in range(rounds)]
        figures.update(
            rounds=rounds, audio_seconds=audio, sequential_wall_s=sequential_wall, concurrent_wall_s=together_wall,
            concurrent_walls_s=together_walls,
            round_ratios=[g * len(payloads) / n / w for g, n, w in zip(group_walls, sizes, together_walls)],
            sequential_audio_s_per_s=audio / sequential_wall, concurrent_audio_s_per_s=audio / together_wall,
            throughput_ratio=sequential_wall / together_wall,
            sequential_p50_s=percentile([t for t, _ in sequential], 50),
            sequential_p95_s=percentile([t for t, _ in sequential], 95),
            concurrent_p50_s=percentile([t for t, _ in together], 50),
            concurrent_p95_s=percentile([t for t, _ in together], 95),
            first_audio_alone_s=alone_first, first_audio_loaded_p50_s=statistics.median(firsts),
            first_audio_loaded_p95_s=percentile(firsts, 95))
        print_throughput(figures, args)  # now: a later failure (or Ctrl-C) still leaves these
        if not args.no_compile:
            print("starting a second server with --compile ...", flush=True)
            compiled, compiled_url, figures["compiled_server_ready_s"] = start_server(model, home, args.slots,
                                                                                      "--compile")
        line = ("Short line.", "-o", str(home / "say.wav"), "--max-seconds", "2")
        warm, warm_compiled, loading = [], [], []
        for _ in range(max(1, args.say_runs)):
            warm.append(timed_say(home, *line, "--server", url))
            if compiled is not None:
                warm_compiled.append(timed_say(home, *line, "--server", compiled_url))
            loading.append(timed_say(home, *line, "--model", str(model), "--no-server"))
        figures.update(say_warm_server_runs_s=warm, say_warm_compiled_server_runs_s=warm_compiled,
                       say_in_process_runs_s=loading, say_warm_server_s=min(warm),
                       say_warm_compiled_server_s=min(warm_compiled, default=None), say_in_process_s=min(loading))
        figures["say_speedup"] = figures["say_in_process_s"] / figures["say_warm_server_s"]
        if warm_compiled:
            figures["say_speedup_compiled"] = figures["say_in_process_s"] / figures["say_warm_compiled_server_s"]
    finally:
        for server in (proc, compiled):
            if server is not None:
                stop(server)
    runs = len(figures["say_in_process_runs_s"])
    figures["load_after"] = os.getloadavg()
    print("load average at the end " + "/".join(f"{x:.1f}" for x in figures["load_after"]))
    for label, key in (("warm server", "say_speedup"), ("warm server with --compile", "say_speedup_compiled")):
        if key not in figures:
            print(f"higgs say through a {label}: not run (--no-compile)")
            continue
        warm_s = figures["say_warm_server_s" if key == "say_speedup" else "say_warm_compiled_server_s"]
        print(f"higgs say, one short line: {label} {warm_s:.2f} s, loading the model "
              f"{figures['say_in_process_s']:.2f} s (best of {runs} each): {figures[key]:.2f}x "
              f"(target >= {TARGET_SAY_SPEEDUP:g}x: {'met' if figures[key] >= TARGET_SAY_SPEEDUP else 'MISSED'})")
    if "compiled_server_ready_s" in figures:
        print(f"  (the --compile server was ready in {figures['compiled_server_ready_s']:.0f} s; its batch-1 step "
              f"is built once and kept in {home})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
