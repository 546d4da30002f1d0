"""`higgs say`: speak one line to an audio file (or a WAV on stdout). Parses, calls `higgs_cli.speech`, prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from higgs_cli.cli.options import (
    SAMPLING,
    CompileOption,
    DeviceOption,
    JsonFlag,
    MaxSecondsOption,
    ModelOption,
    OutputFileOption,
    QuietFlag,
    RasMaxRepeatOption,
    RasWindowOption,
    RevisionOption,
    SeedOption,
    TemperatureOption,
    TopKOption,
    TopPOption,
)
from higgs_cli.cli.output import out
from higgs_cli.engine.request import DEFAULT_MAX_SECONDS, DEFAULT_SEED


def say(
    text: Annotated[str, typer.Argument(metavar="TEXT", show_default=False, help=(
        "The text to speak; - reads it from stdin. [laugh], [music start] ... markers work."))],
    output: OutputFileOption = Path("higgs.wav"),
    voice: Annotated[Optional[str], typer.Option(
        "--voice", help="Voice to clone: a library voice name or a reference audio file.")] = None,
    transcript: Annotated[Optional[str], typer.Option(
        "--transcript", help="What is said in --voice AUDIO (library voices have their own).")] = None,
    scene: Annotated[Optional[str], typer.Option("--scene", help="Scene description, e.g. 'a quiet room'.")] = None,
    seed: SeedOption = DEFAULT_SEED,
    temperature: TemperatureOption = SAMPLING.temperature,
    top_k: TopKOption = SAMPLING.top_k,
    top_p: TopPOption = SAMPLING.top_p,
    ras_window: RasWindowOption = SAMPLING.ras_window,
    ras_max_repeat: RasMaxRepeatOption = SAMPLING.ras_max_repeat,
    max_seconds: MaxSecondsOption = DEFAULT_MAX_SECONDS,
    model: ModelOption = None,
    revision: RevisionOption = None,
    device: DeviceOption = None,
    compile_: CompileOption = False,
    stream: Annotated[bool, typer.Option("--stream", help="Write audio while it is generated; with -o - as WAV "
                                         "on stdout, e.g. `higgs say ... --stream -o - | aplay`.")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Speak TEXT (optionally in a cloned voice) and write it to an audio file."""
    from higgs_cli import speech
    from higgs_cli.cli.progress import generation_progress, load_session
    from higgs_cli.engine.request import Sampling

    job = speech.SayJob(
        text=speech.read_text(text), output=output, scene=scene, seed=seed, max_seconds=max_seconds, stream=stream,
        voice=speech.VoiceChoice(voice or "", transcript) if voice or transcript else None,
        sampling=Sampling(temperature=temperature, top_k=top_k, top_p=top_p, ras_window=ras_window,
                          ras_max_repeat=ras_max_repeat))
    prepared = speech.prepare(job)
    session = load_session(model, revision=revision, device=device, compile=compile_)
    if stream:
        result = speech.run(prepared, session)
    else:
        with generation_progress("speaking", job.max_frames) as advance:
            result = speech.run(prepared, session, progress=advance)
    if result.random_weights:
        out.random_weights()
    # With the audio on stdout, the summary (JSON too) goes to stderr.
    out.result(result.to_dict(), lambda console: console.print(result.summary(max_seconds)), to_stderr=job.to_stdout)


def register(app: typer.Typer) -> None:
    app.command("say")(say)
