"""`higgs say`: speak one line to an audio file (or a WAV on stdout). Parses, calls `higgs_cli.speech`, prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from higgs_cli.cli.options import (
    SAMPLING,
    BatchSizeOption,
    CompileOption,
    DeviceOption,
    JsonFlag,
    MaxSecondsOption,
    ModelOption,
    NoServerFlag,
    OutputFileOption,
    QuietFlag,
    RasMaxRepeatOption,
    RasWindowOption,
    RayOption,
    RevisionOption,
    SeedOption,
    ServerOption,
    TemperatureOption,
    TopKOption,
    TopPOption,
    WorkersOption,
)
from higgs_cli.cli.output import out
from higgs_cli.engine.api import DEFAULT_BATCH_SIZE
from higgs_cli.engine.request import DEFAULT_MAX_SECONDS, DEFAULT_SEED
from higgs_cli.errors import UsageError


def say(
    ctx: typer.Context,
    text: Annotated[Optional[str], typer.Argument(metavar="TEXT", show_default=False, help=(
        "The text to speak; - reads it from stdin. [laugh], [music start] ... markers work."))] = None,
    output: OutputFileOption = Path("higgs.wav"),
    input_file: Annotated[Optional[Path], typer.Option(
        "--input-file", "-i", show_default=False, help="Speak every row of a file instead of TEXT: .txt (a line "
        "each), .csv/.tsv with a header, or .jsonl; columns id, text, voice, scene (or direction), seed, format. "
        "- reads lines from stdin.")] = None,
    output_dir: Annotated[Optional[Path], typer.Option(
        "--output-dir", "-d", show_default=False, help="With --input-file: the folder for one file per row "
        "(named by id, else by row number) and manifest.json.")] = None,
    paragraphs: Annotated[bool, typer.Option(
        "--paragraphs", help="With a .txt --input-file: one row per blank-line-separated block.")] = False,
    audio_format: Annotated[str, typer.Option(
        "--format", help="With --input-file: the format of rows that set none (wav, flac, mp3, ogg).")] = "wav",
    force: Annotated[bool, typer.Option(
        "--force", help="With --input-file: render every row again, even those already rendered.")] = False,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    voice: Annotated[Optional[str], typer.Option(
        "--voice", help="Voice to clone: a library voice name or a reference audio file.")] = None,
    transcript: Annotated[Optional[str], typer.Option(
        "--transcript", help="What is said in --voice AUDIO (library voices have their own).")] = None,
    no_adapter: Annotated[bool, typer.Option("--no-adapter", help=(
        "Speak a trained --voice without its adapter (the base model), for A/B listening.")) ] = False,
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
    server: ServerOption = None,
    no_server: NoServerFlag = False,
    ray: RayOption = None,
    workers: WorkersOption = None,
    stream: Annotated[bool, typer.Option("--stream", help="Write audio while it is generated; with -o - as WAV "
                                         "on stdout, e.g. `higgs say ... --stream -o - | aplay`.")] = False,
    json_output: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Speak TEXT (optionally in a cloned voice) and write it to an audio file; or, with --input-file,
    every row of a file, one file per row in --output-dir (rows already rendered are skipped)."""
    from higgs_cli import speech
    from higgs_cli.cli.progress import SESSION_NOTES, generation_progress
    from higgs_cli.engine.request import Sampling
    from higgs_cli.sessions import SessionSpec, describe_session, open_session

    spec = SessionSpec(model=model, revision=revision, device=device, compile=compile_, server=server,
                       no_server=no_server, ray=ray, workers=workers)  # bad options refused before anything loads
    if ray is not None and input_file is None:
        raise UsageError("--ray goes with --input-file", hint="a single line is spoken here or by `higgs serve`")
    sampling = Sampling(temperature=temperature, top_k=top_k, top_p=top_p, ras_window=ras_window,
                        ras_max_repeat=ras_max_repeat)
    if input_file is not None or output_dir is not None:
        given_output = ctx.get_parameter_source("output").name not in ("DEFAULT", "DEFAULT_MAP")
        from higgs_cli.batch.render import BatchSettings

        settings = BatchSettings(
            voice=speech.VoiceChoice(voice or "", transcript) if voice or transcript else None, scene=scene,
            sampling=sampling, seed=seed, max_seconds=max_seconds, format=audio_format.lower().lstrip("."),
            force=force, batch_size=batch_size)
        _say_batch(text, input_file, output_dir, settings, spec, paragraphs=paragraphs, stream=stream,
                   given_output=given_output)
        return
    if text is None:
        raise UsageError("give TEXT to speak, - to read it from stdin, or --input-file FILE --output-dir DIR",
                         hint='e.g. higgs say "Hello there." -o hello.wav')
    job = speech.SayJob(
        text=speech.read_text(text), output=output, scene=scene, seed=seed, max_seconds=max_seconds, stream=stream,
        voice=speech.VoiceChoice(voice or "", transcript) if voice or transcript else None,
        sampling=sampling, no_adapter=no_adapter)
    prepared = speech.prepare(job)
    session = open_session(spec, notes=SESSION_NOTES)
    if stream:
        result = speech.run(prepared, session)
    else:
        with generation_progress("speaking", job.max_frames) as advance:
            result = speech.run(prepared, session, progress=advance)
    if result.random_weights:
        out.random_weights()
    # With the audio on stdout, the summary (JSON too) goes to stderr.
    out.result({**result.to_dict(), "session": describe_session(session)},
               lambda console: console.print(result.summary(max_seconds)), to_stderr=job.to_stdout)


def _say_batch(text, input_file, output_dir, settings, spec, *, paragraphs, stream, given_output) -> None:
    """`say --input-file FILE --output-dir DIR`: check the whole file, then render it on one session."""
    from higgs_cli.audio.io import supported_output_formats
    from higgs_cli.batch.render import prepare_batch, render_batch
    from higgs_cli.batch.rows import read_rows
    from higgs_cli.cli.progress import SESSION_NOTES, generation_progress
    from higgs_cli.sessions import describe_session, open_session

    if input_file is None or output_dir is None:
        raise UsageError("--input-file and --output-dir go together", hint="give both, e.g. "
                         "higgs say --input-file lines.csv --output-dir out/")
    if text is not None:
        raise UsageError("give TEXT or --input-file, not both")
    if given_output or stream:
        raise UsageError(f"{'-o/--output' if given_output else '--stream'} does not go with --input-file",
                         hint="each row is written to its own file in --output-dir")
    formats = supported_output_formats()
    if settings.format not in formats:
        raise UsageError(f"--format {settings.format}: cannot write that format", hint="use one of: "
                         + ", ".join(formats))
    stdin = str(input_file) == "-"
    batch_input = read_rows(input_file, paragraphs=paragraphs, formats=formats,
                            data=_stdin_bytes() if stdin else None)
    if batch_input.ignored_columns:
        out.warn(f"{batch_input.where}: columns not read: {', '.join(batch_input.ignored_columns)}")
    batch = prepare_batch(batch_input, output_dir, settings)
    # The model loads only if a row must be generated: a finished batch run again loads nothing. With
    # --ray, workers each hold a model; this process plans, caches and writes.
    session = open_session(spec, lazy=True, notes=SESSION_NOTES)
    with generation_progress(f"speaking {len(batch_input.rows)} rows", None) as advance:
        summary = render_batch(batch, session, progress=advance)
    if summary.random_weights and summary.count("generated"):
        out.random_weights()
    for row in summary.rows:
        if row["status"] == "failed":
            out.warn(f"{summary.input}:{row['line']}: {row['error']}")
    data = {**summary.to_dict(), "session": describe_session(session)}  # as `say` and `project render`
    out.result(data, lambda console: console.print(
        f"{data['rows']} rows: {data['generated']} generated, {data['skipped']} already rendered"
        + (f", {data['failed']} failed" if data["failed"] else "") + f"; {data['manifest']}"))
    if data["failed"]:
        raise typer.Exit(1)


def _stdin_bytes() -> bytes:
    import sys

    stream = getattr(sys.stdin, "buffer", sys.stdin)
    data = stream.read()
    return data.encode("utf-8") if isinstance(data, str) else data


def register(app: typer.Typer) -> None:
    app.command("say")(say)
