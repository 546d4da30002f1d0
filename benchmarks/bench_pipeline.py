"""Pipeline benchmark: everything a render does around the model, per stage, at 1, 10 and 60 minutes of audio.

    python benchmarks/bench_pipeline.py [--minutes 1,10] [--formats flac,mp3,m4b] [--baseline REV]
                                        [--slow-generation X] [--json PATH]

Generation is replaced by stored codes: a session returns, instantly, codes and audio made once by a
random tiny checkpoint's codec (`init-random --size tiny`), so the render times the pipeline, not the
model. Each project (two speakers, dialogue chapters of 10 s lines, guards on without speech
recognition, WAV master, stems, subtitles) is rendered from an empty cache in a process of its own, so
its peak memory is its own. Printed per stage: seconds and the real-time factor (seconds of audio per
second). Stages are timed by wrapping the functions that do them (pipeline_stages.py); what no wrapper
covers is "other" (planning, the render's own bookkeeping, renames). Then the WAV master is encoded
again to each of --formats, timed alone. The codec stage is the tiny codec's decode of the same codes on
this CPU, per minute of audio: in a real render it runs on the model's device inside generation.

--baseline REV renders the same projects with the code of git revision REV too, interleaved (old, new
for each size), so both are measured under the same load. --slow-generation X makes the session sleep
1/X s per second of audio it returns (generation at X times real time), to show how much of the work
after each line overlaps generation. Figures from a shared, loaded machine vary by tens of percent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
LINE_SECONDS = 10.0
LINES_PER_CHAPTER = 30
BANK = 6  # distinct decoded lines the session hands out in turn
WORDS = ("the river ran slow and brown under the old stone bridge while we waited for the morning "
         "train to carry us north along the quiet coast toward home").split()


def write_project(folder: Path, minutes: float, fmt: str = "wav") -> int:
    """A two-speaker book of `minutes` of 10 s lines in chapters; returns the number of lines."""
    lines = max(1, round(minutes * 60 / LINE_SECONDS))
    out = ["version: 1", "title: Bench Book", "defaults:", "  seed: 7", "  retries: 0", "  pause: 0.4",
           "output:", f"  format: {fmt}", "speakers:", "  narrator:", "    description: calm low voice",
           "  guest:", "    description: bright quick voice", "script:"]
    for n in range(lines):
        if n % LINES_PER_CHAPTER == 0:
            out += [f"  - id: ch{n // LINES_PER_CHAPTER + 1:03d}", "    task: dialogue",
                    f"    title: Chapter {n // LINES_PER_CHAPTER + 1}", "    lines:"]
        words = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(24))
        out.append(f"      - {('narrator', 'guest')[n % 2]}: Line {n}, {words}.")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "project.yaml").write_text("\n".join(out) + "\n", encoding="utf-8")
    return lines


def make_bank(folder: Path) -> dict:
    """Decode BANK random 10 s code sequences with a tiny random codec; time it. Saved as bank.npz."""
    from higgs_cli.engine.checkpoint import init_random
    from higgs_cli.engine.request import FRAME_RATE, NUM_CODEBOOKS
    from higgs_cli.engine.session import ModelSession

    init_random(folder / "tiny", size="tiny", seed=0, force=True)
    session = ModelSession.load(str(folder / "tiny"), device="cpu")
    frames = round(LINE_SECONDS * FRAME_RATE)
    codes = [np.random.default_rng(i).integers(0, 1024, size=(NUM_CODEBOOKS, frames)) for i in range(BANK)]
    session.decode_many(codes[:1])  # warm up
    started = time.perf_counter()
    audio = session.decode_many(codes)
    spent = time.perf_counter() - started
    np.savez(folder / "bank.npz", codes=np.stack(codes), audio=np.stack(audio))
    seconds = sum(a.size for a in audio) / 24000
    return {"seconds_per_audio_minute": spent / seconds * 60, "realtime": seconds / spent}


class CachedSession:
    """A Session that returns stored codes and audio at once (or at `slow` x real time)."""

    model_id, codec_id, name, is_random = "bench-model", "bench-codec", "bench/cached", True

    def __init__(self, bank: Path, slow: float | None) -> None:
        with np.load(bank) as data:
            self.codes, self.audio = data["codes"], data["audio"]
        self.slow = slow
        self.slept = 0.0

    def generate(self, requests, *, batch_size=1, progress=None):
        from higgs_cli.engine.request import GenerationResult

        out = []
        for request in requests:
            n = int(request.text.split(",")[0].split()[-1]) % len(self.codes)
            out.append(GenerationResult(codes=self.codes[n], audio=self.audio[n], finished=True))
        if self.slow:
            pause = sum(r.audio.size for r in out) / 24000 / self.slow
            time.sleep(pause)
            self.slept += pause
        return out

    def encode_audio(self, audio):
        raise RuntimeError("the benchmark project has no voice to encode")


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Start the peak-memory mark (VmHWM) afresh: a process forked from a big one inherits its mark."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(args: argparse.Namespace) -> None:
    """Render one project (empty cache) with the code on sys.path; print one JSON line."""
    sys.path.insert(0, str(ROOT))
    from pipeline_stages import StageClock

    from higgs_cli.audio.io import write_audio_blocks
    from higgs_cli.project import load_project, render_project

    folder = Path(args.child)
    project = load_project(folder / "project.yaml")
    session = CachedSession(Path(args.bank), args.slow_generation)
    import scipy.ndimage  # noqa: F401  (what a render imports on first use: loaded before the memory base,
    import scipy.signal  # noqa: F401   so the peak is what the render holds, not the libraries)

    import higgs_cli.project.building.render  # noqa: F401  (the modules the clock wraps, loaded now)

    clock = StageClock().install()
    _reset_peak()
    base = _status_mib("VmRSS")
    started = time.perf_counter()
    summary = render_project(project, session, batch_size=8)
    wall = time.perf_counter() - started
    peak = _status_mib("VmHWM") - base
    clock.uninstall()
    audio_s = summary.duration
    encodes = {}
    master = Path(summary.outputs["master"])
    for fmt in [f for f in args.formats.split(",") if f]:
        import soundfile as sf

        started = time.perf_counter()
        with sf.SoundFile(str(master)) as source:
            write_audio_blocks(folder / f"encoded.{fmt}", source.blocks(1 << 18, dtype="float32"))
        encodes[fmt] = time.perf_counter() - started
    import hashlib

    build = master.parent
    digest = hashlib.sha256()  # what must not change: the master, stems, subtitles and the measured figures
    for path in sorted(p for p in build.rglob("*") if p.is_file() and p.suffix in (".wav", ".srt", ".vtt")):
        digest.update(path.relative_to(build).as_posix().encode() + path.read_bytes())
    digest.update(json.dumps(summary.mastering, sort_keys=True).encode())
    print(json.dumps({"wall": wall, "outputs": digest.hexdigest(), "mastering": summary.mastering,
                      "audio_s": audio_s, "lines": summary.lines, "stages": dict(clock.seconds),
                      "threaded": sorted(clock.threaded),
                      "generation": summary.generation_time, "slept": session.slept, "peak_mib": peak,
                      "encodes": encodes}))


def run_child(code: Path, folder: Path, bank: Path, args: argparse.Namespace) -> dict:
    shutil.rmtree(folder / ".higgs", ignore_errors=True)
    shutil.rmtree(folder / "build", ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder), "--bank", str(bank),
           "--formats", args.formats]
    if args.slow_generation:
        cmd += ["--slow-generation", str(args.slow_generation)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the render failed ({code}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_tree(rev: str, where: Path) -> Path:
    """The higgs_cli package of git revision `rev`, unpacked into `where`."""
    where.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "higgs_cli", "plugins"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def table(results: list[dict]) -> str:
    stages = list(dict.fromkeys(s for r in results for s in r["stages"]))
    head = ["stage"] + [f"{r['label']} {r['minutes']:g} min" for r in results]
    rows = [head, ["-" * len(h) for h in head]]

    def cell(seconds: float, audio: float) -> str:
        return f"{seconds:.2f} s ({audio / seconds:,.0f}x)" if seconds > 0 else "0"

    threaded = {s for r in results for s in r.get("threaded", ())}
    for stage in stages:
        rows.append([stage + (" *" if stage in threaded else "")]
                    + [cell(r["stages"].get(stage, 0.0), r["audio_s"]) for r in results])
    rows.append(["other (main thread)"]
                + [cell(r["wall"] - sum(v for k, v in r["stages"].items() if k not in r.get("threaded", ()))
                        - r["slept"], r["audio_s"]) for r in results])
    rows.append(["render (whole)"] + [cell(r["wall"] - r["slept"], r["audio_s"]) for r in results])
    if any(r["slept"] for r in results):
        rows.append(["render wall / generation"] + [f"{r['wall']:.2f} / {r['slept']:.2f} s" for r in results])
    fmts = list(dict.fromkeys(f for r in results for f in r["encodes"]))
    for fmt in fmts:
        rows.append([f"encode {fmt} (alone)"] + [cell(r["encodes"].get(fmt, 0.0), r["audio_s"]) for r in results])
    rows.append(["peak MiB per hour"] + [f"{r['peak_mib'] * 3600 / r['audio_s']:,.0f} ({r['peak_mib']:.0f} MiB)"
                                         for r in results])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    if threaded:
        lines.append("* on worker threads (seconds summed over threads), beside the main thread")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="1,10", help="project lengths, comma-separated (e.g. 1,10,60)")
    parser.add_argument("--formats", default="flac,mp3,m4b", help="formats the master is encoded to again, alone")
    parser.add_argument("--baseline", help="a git revision to measure too, interleaved (e.g. main)")
    parser.add_argument("--slow-generation", type=float, help="generation at this many times real time")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bank", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    work = Path(tempfile.mkdtemp(prefix="higgs-bench-pipeline-"))
    try:
        codec = make_bank(work)
        print(f"codec decode (tiny random codec, CPU): {codec['seconds_per_audio_minute']:.2f} s per minute "
              f"of audio ({codec['realtime']:.0f}x real time)", flush=True)
        codes = [("new", REPO)]
        if args.baseline:
            codes.insert(0, (f"old ({args.baseline})", baseline_tree(args.baseline, work / "baseline")))
        results = []
        for minutes in [float(m) for m in args.minutes.split(",") if m]:
            folder = work / f"p{minutes:g}"
            write_project(folder, minutes)
            for label, code in codes:
                result = run_child(code, folder, work / "bank.npz", args)
                result.update(label=label, minutes=minutes)
                results.append(result)
                print(f"{label} {minutes:g} min: {result['wall']:.2f} s", flush=True)
        print(table(results))
        for minutes in sorted({r["minutes"] for r in results}):
            same = {r["outputs"] for r in results if r["minutes"] == minutes}
            if len(codes) > 1:
                print(f"{minutes:g} min: outputs (master, stems, subtitles, figures) "
                      f"{'identical' if len(same) == 1 else 'DIFFER'} between old and new")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"codec": codec, "renders": results}, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
