"""Rendering past one machine: the same project rendered locally and by 1 and 2 Ray workers.

    python benchmarks/bench_scale.py [--model DIR|HUB_ID] [--project DIR] [--workers 1,2] [--address auto]

Each render starts from an empty cache (a fresh copy of the project), so every
line is generated, after one untimed request per worker. Reported per render: wall seconds in generation, lines, audio
seconds made, and for Ray the scheduling overhead per line: the wall time of its
generate() calls less the busiest actor's own work, per line (shipping requests
and results, queues: what Ray costs beyond the model), and the generation time
against the local render's, per line. With more workers, the speed-up over one. Without --address a
private Ray cluster is started on this machine with one CPU (or GPU) per worker.
On a GPU machine, one worker per GPU (--device cuda). Writes
benchmarks/results/scale.json. A random-init model (the default: `init-random
--size tiny`) speaks noise: these figures are about scheduling only.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXAMPLE = ROOT.parent / "projects" / "jingle"


def render_once(project_dir: Path, session, batch_size: int) -> dict:
    from higgs_cli.plugins.manager import get_tasks
    from higgs_cli.project.building.render import render_project
    from higgs_cli.project.reading.load import load_project

    tasks = get_tasks()
    started = time.perf_counter()
    summary = render_project(load_project(project_dir, tasks=tasks), session, tasks=tasks, batch_size=batch_size)
    return {"lines": summary.lines, "generated": summary.generated,
            "audio_seconds": round(summary.generated_seconds, 2),
            "generation_seconds": round(summary.generation_time, 3),
            "wall_seconds": round(time.perf_counter() - started, 3)}


def warm_up(session, workers: int) -> None:
    """One short untimed request per worker (distinct scenes, so each worker gets one): first calls
    pay one-off costs that are not scheduling."""
    from higgs_cli.engine.request import GenerationRequest

    session.generate([GenerationRequest(text="Warming up.", scene=f"warm-up {n}", max_frames=10)
                      for n in range(workers)], batch_size=1)


def fresh_copy(source: Path, scratch: Path, name: str) -> Path:
    target = scratch / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("build", ".higgs"))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: a tiny random-init one)")
    parser.add_argument("--project", type=Path, default=EXAMPLE, help="project folder (default: projects/jingle)")
    parser.add_argument("--workers", default="1,2", help="worker counts to try, comma-separated")
    parser.add_argument("--address", help="a running cluster (default: start a private one here)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of the local render and of each CPU worker (the same, so that the "
                             "overhead compares like with like)")
    parser.add_argument("--no-local", action="store_true", help="skip the local render (the overhead needs it)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]

    import ray

    from higgs_cli.engine.checkpoint import init_random
    from higgs_cli.sessions.ray_session import RaySession

    scratch = Path(tempfile.mkdtemp(prefix="higgs-bench-scale-"))
    model = args.model
    if model is None:
        model = str(scratch / "tiny")
        init_random(model, size="tiny", seed=0)
    results: dict = {"machine": platform.node(), "python": sys.version.split()[0], "model": model,
                     "project": str(args.project), "batch_size": args.batch_size, "threads": args.threads,
                     "runs": []}
    try:
        local = None
        if not args.no_local:
            import torch

            from higgs_cli.engine.session import ModelSession

            torch.set_num_threads(args.threads)
            session = ModelSession.load(model, device=args.device)
            warm_up(session, 1)
            local = render_once(fresh_copy(args.project, scratch, "local"), session, args.batch_size)
            results["runs"].append({"kind": "local", "device": str(session.device), **local})
            print(f"local        {local}", flush=True)
            del session
        if args.address is None:
            gpus = max(counts) if args.device == "cuda" else 0
            ray.init(num_cpus=max(counts), num_gpus=gpus, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=args.address, logging_level=logging.WARNING, log_to_driver=False)
        one = None
        for n in counts:
            started = time.perf_counter()
            with RaySession(model, workers=n, device=args.device, threads=args.threads) as session:
                ready = time.perf_counter() - started
                warm_up(session, n)
                session.timing.update(calls=0, lines=0, wall=0.0, busiest=0.0)
                run = render_once(fresh_copy(args.project, scratch, f"ray{n}"), session, args.batch_size)
                timing = dict(session.timing)
            run = {"kind": "ray", "workers": n, "start_seconds": round(ready, 2), **run,
                   "scheduling_seconds_per_line": round((timing["wall"] - timing["busiest"]) / max(1, timing["lines"]),
                                                        4)}
            if local is not None and run["lines"]:
                run["versus_local_seconds_per_line"] = round(
                    (run["generation_seconds"] - local["generation_seconds"]) / run["lines"], 4)
            if n == 1:
                one = run
            elif one is not None and run["generation_seconds"] > 0:
                run["speedup_over_one_worker"] = round(one["generation_seconds"] / run["generation_seconds"], 2)
            results["runs"].append(run)
            print(f"ray x{n:<6} {run}", flush=True)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    out = ROOT / "results" / "scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
