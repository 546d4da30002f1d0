"""`higgs say`: speak one line to an audio file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from higgs_cli.cli.output import RANDOM_MODEL_WARNING, out

ModelOption = Annotated[Optional[str], typer.Option(
    "--model", "-m", envvar="HIGGS_MODEL", show_envvar=True,
    help="Hub repo id or local checkpoint folder [default: bosonai/higgs-audio-v2-generation-3B-base].")]
RevisionOption = Annotated[Optional[str], typer.Option("--revision", help="Hub revision (branch, tag or commit).")]
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:N or mps [default: best].")]


def say(
    text: Annotated[str, typer.Argument(metavar="TEXT",
                                        help="The text to speak. [laugh], [music start] ... markers work.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file: .wav, .flac (or .mp3, .ogg).")] = Path(
        "higgs.wav"),
    voice: Annotated[Optional[str], typer.Option(
        "--voice", help="Voice to clone: a library voice name or a reference audio file.")] = None,
    transcript: Annotated[Optional[str], typer.Option(
        "--transcript", help="What is said in --voice AUDIO (library voices have their own).")] = None,
    scene: Annotated[Optional[str], typer.Option("--scene", help="Scene description, e.g. 'a quiet room'.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed: same seed, same audio.")] = 0,
    temperature: Annotated[float, typer.Option("--temperature", help="0 is greedy.")] = 0.7,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Sample from the K likeliest codes.")] = None,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass.")] = 0.95,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="Longest audio to generate.")] = 30.0,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    compile_: Annotated[bool, typer.Option("--compile", help="Compile the decode step (CUDA graphs on "
                                                                   "GPU, inductor kernels on CPU): a slower first "
                                                                   "start (about a minute on CPU; cached for later "
                                                                   "runs), then 1.3-2.5x "
                                                                   "faster decoding on CPU, by CPU model.")] = False,
    stream: Annotated[bool, typer.Option("--stream", help="Write audio while it is generated; with -o - as WAV "
                                         "on stdout, e.g. `higgs say ... --stream -o - | aplay`.")] = False,
) -> None:
    """Speak TEXT (optionally in a cloned voice) and write it to an audio file."""
    from higgs_cli import speech
    from higgs_cli.audio.io import supported_output_formats
    from higgs_cli.cli.progress import generation_progress, load_session
    from higgs_cli.engine.request import Sampling
    from higgs_cli.engine.text import MAX_TEXT_CHARS, check_text
    from higgs_cli.errors import UsageError
    from higgs_cli.fsutil import check_writable

    to_stdout = str(output) == "-"
    if to_stdout and not stream:
        raise UsageError("-o - (stdout) needs --stream")
    if not to_stdout:
        if output.suffix.lower().lstrip(".") not in supported_output_formats():
            raise UsageError(f"cannot write {output}: unsupported extension",
                             hint="use one of: " + ", ".join(f".{e}" for e in supported_output_formats()))
        check_writable(output)  # fail now, before loading a model
    if transcript and not voice:
        raise UsageError("--transcript goes with --voice AUDIO")
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    speech.check_sampling(temperature, top_k, top_p, max_seconds)
    check_text(text, max_chars=MAX_TEXT_CHARS)
    speech.check_speakable(text)
    chosen = speech.resolve_voice(speech.VoiceChoice(voice, transcript)) if voice else None
    session = load_session(model, revision=revision, device=device, compile=compile_)
    turn = speech.voice_turn(chosen, session) if chosen else None
    request = speech.build_request(text, voice=turn, scene=scene, sampling=sampling, seed=seed,
                                   max_seconds=max_seconds)
    if stream:
        data = _say_streaming(session, request, output, to_stdout)
        result = None
    else:
        started = time.perf_counter()
        with generation_progress("speaking", request.max_frames) as advance:
            result = speech.say(session, request, progress=advance)
        elapsed = time.perf_counter() - started
        from higgs_cli.audio.io import write_audio

        write_audio(output, result.audio)
        data = {"output": str(output), "seconds": round(len(result.audio) / 24000, 3), "frames": result.frames,
                "finished": result.finished, "generation_seconds": round(elapsed, 3),
                "frames_per_second": round(result.frames / elapsed, 1) if elapsed > 0 else None}
    data.update({"model": session.name, "random_weights": session.is_random, "seed": seed})
    if session.is_random:
        data["warning"] = RANDOM_MODEL_WARNING

    def human(console) -> None:
        if to_stdout:  # stdout carries the audio; the summary goes to stderr
            out.note(f"streamed {data['seconds']:.2f} s of audio, first audio after {data['first_audio_seconds']} s")
            return
        note = "" if data.get("finished", True) else f" (stopped at --max-seconds {max_seconds:g})"
        speed = f", {data['frames_per_second']} frames/s" if "frames_per_second" in data else (
            f", first audio after {data['first_audio_seconds']} s")
        console.print(f"wrote {output}: {data['seconds']:.2f} s of audio{note}{speed}")
        if session.is_random:
            console.print("[yellow]note:[/] random-weight model: this file is noise, not speech.")

    if to_stdout and out.json_mode:
        out.note(json.dumps(data))
    else:
        out.result(data, human)


def _say_streaming(session, request, output: Path, to_stdout: bool) -> dict:
    """Generate with ModelSession.stream, writing each chunk as soon as it is decoded."""
    import sys

    from higgs_cli.audio.stream import stream_to_file, stream_wav

    started = time.perf_counter()
    first: list[float] = []

    def timed(chunks):
        for chunk in chunks:
            if not first:
                first.append(time.perf_counter() - started)
            yield chunk

    chunks = timed(session.stream(request))
    samples = stream_wav(sys.stdout.buffer, chunks) if to_stdout else stream_to_file(output, chunks)
    return {"output": str(output), "seconds": round(samples / 24000, 3), "streamed": True,
            "first_audio_seconds": round(first[0], 3) if first else None,
            "generation_seconds": round(time.perf_counter() - started, 3)}


def register(app: typer.Typer) -> None:
    app.command("say")(say)
